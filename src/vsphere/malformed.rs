//! Property tests: whatever a server sends, reading a page ends in a result or an error,
//! never a panic, and benign additions change nothing.

use super::Error;
use super::parse::tests::{PAGE, read_vms, vm_42};
use super::soap::push_escaped;
use proptest::prelude::*;

type Page = Result<(Vec<super::VmProperties>, Option<String>), Error>;

fn read(body: &[u8]) -> Page {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime builds")
        .block_on(read_vms(body))
}

/// Byte offsets inside the response element where an element may be inserted.
fn element_boundaries() -> Vec<usize> {
    let first = PAGE.find("<returnval>").unwrap_or(0);
    let last = PAGE.find("</RetrievePropertiesExResponse>").unwrap_or(0);
    PAGE.match_indices("><")
        .map(|(at, _)| at + 1)
        .filter(|at| (first..=last).contains(at))
        .collect()
}

#[test]
fn every_strict_prefix_of_a_page_is_truncated() {
    let page = PAGE.as_bytes();
    for end in 0..page.len() {
        match read(&page[..end]) {
            Err(Error::Truncated { call }) => assert_eq!(call, "RetrievePropertiesEx"),
            other => panic!("cut at byte {end} gave {other:?}"),
        }
    }
    assert!(read(page).is_ok());
}

#[test]
fn a_huge_string_is_read_whole() {
    let name = "ab&<".repeat(250_000);
    let mut escaped = String::new();
    push_escaped(&mut escaped, &name);
    let body = PAGE.replace(">app-01<", &format!(">{escaped}<"));
    let (vms, _) = read(body.as_bytes()).unwrap();
    assert_eq!(vms[0].name.as_deref(), Some(name.as_str()));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read(&bytes);
    }

    #[test]
    fn random_bytes_after_a_valid_start_never_panic(
        cut in 0..PAGE.len(),
        tail in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut body = PAGE.as_bytes()[..cut].to_vec();
        body.extend_from_slice(&tail);
        let _ = read(&body);
    }

    #[test]
    fn flipped_bytes_never_panic(
        flips in proptest::collection::vec((0..PAGE.len(), any::<u8>()), 1..12),
    ) {
        let mut body = PAGE.as_bytes().to_vec();
        for (at, byte) in flips {
            body[at] = byte;
        }
        let _ = read(&body);
    }

    #[test]
    fn unknown_elements_anywhere_in_the_response_change_nothing(
        picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..6),
        name in "[a-zA-Z][a-zA-Z0-9]{0,12}",
    ) {
        let boundaries = element_boundaries();
        let mut positions: Vec<usize> = picks.iter().map(|pick| *pick.get(&boundaries)).collect();
        positions.sort_unstable();
        positions.dedup();
        let mut body = PAGE.to_owned();
        let unknown = format!(r#"<x:{name} a="1"><inner xsi:type="T">text &amp; more<deeper/></inner></x:{name}>"#);
        for at in positions.into_iter().rev() {
            body.insert_str(at, &unknown);
        }
        prop_assert_eq!(read(body.as_bytes()).unwrap(), read(PAGE.as_bytes()).unwrap());
    }

    #[test]
    fn a_number_too_big_for_64_bits_names_the_object_and_property(
        digits in "[1-9][0-9]{19,200}",
    ) {
        let body = PAGE.replace(">4096<", &format!(">{digits}<"));
        match read(body.as_bytes()) {
            Err(Error::Parse { message, .. }) => {
                prop_assert!(message.contains("vm-42"), "{}", message);
                prop_assert!(message.contains("config.hardware.memoryMB"), "{}", message);
                prop_assert!(message.len() < 300, "the value is quoted short: {}", message);
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn any_name_survives_escaping(name in "[^\u{0}-\u{8}\u{b}\u{c}\u{e}-\u{1f}\u{fffe}\u{ffff}]{0,200}") {
        let mut escaped = String::new();
        push_escaped(&mut escaped, &name);
        let body = PAGE.replace(">app-01<", &format!(">{escaped}<"));
        let (vms, _) = read(body.as_bytes()).unwrap();
        prop_assert_eq!(vms[0].name.as_deref(), Some(name.as_str()));
        prop_assert_eq!(&vms[0].uuid, &vm_42().uuid);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow(depth in 129_usize..20_000) {
        let nested = format!("{}x{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let body = PAGE.replace("<token>", &format!("{nested}<token>"));
        match read(body.as_bytes()) {
            Err(Error::Parse { message, .. }) => prop_assert!(message.contains("nested"), "{}", message),
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn moderate_nesting_in_unknown_values_is_skipped(depth in 1_usize..100) {
        let nested = format!("{}x{}", "<a>".repeat(depth), "</a>".repeat(depth));
        let body = PAGE.replace("<token>", &format!("{nested}<token>"));
        prop_assert_eq!(read(body.as_bytes()).unwrap(), read(PAGE.as_bytes()).unwrap());
    }
}
