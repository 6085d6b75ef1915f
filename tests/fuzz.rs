//! Bounded fuzzing with proptest: whatever reaches the CSV importer, the settings loader
//! or the JWT decoder, the answer is a value or a typed error with a short message, never a
//! panic. (The SOAP property parser has its own properties beside it, in
//! `src/vsphere/malformed.rs`: arbitrary bytes, cut and flipped real pages.)
//!
//! Each property runs proptest's default 256 cases, a few seconds in all; set
//! `PROPTEST_CASES` for a longer run. A failing input is kept in
//! `proptest-regressions/fuzz.txt` and replayed first on every later run; commit it, and
//! add it below as a named regression test once fixed.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use std::path::Path;
use vctp::aggregate::Day;
use vctp::auth::{Claims, Tokens};
use vctp::config::Settings;
use vctp::inventory::HourlyRow;
use vctp::inventory::csv::{HourlyCsvReader, HourlyCsvWriter};
use vctp::synth::Inventory;

/// Errors quote what they found, cut short: one line of a terminal, not the input.
const MAX_MESSAGE: usize = 2_000;

/// Every row of `bytes` read as an import would, or the first error's message.
fn import(bytes: &[u8]) -> Result<Vec<HourlyRow>, String> {
    let mut reader = HourlyCsvReader::new(bytes, "fuzz.csv").map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    while let Some((_, row)) = reader.next_row().map_err(|e| e.to_string())? {
        rows.push(row);
    }
    Ok(rows)
}

fn exported(rows: &[HourlyRow]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = HourlyCsvWriter::new(&mut out).unwrap();
    for row in rows {
        writer.write(row).unwrap();
    }
    writer.finish().unwrap();
    out
}

/// A real export: a few snapshots of a synthetic inventory.
fn valid_csv() -> Vec<u8> {
    let day = Day::parse("2026-03-10").unwrap();
    let inventory = Inventory::new(4, 1, day, 1, 7);
    let times = inventory.snapshot_times(0, day);
    let rows: Vec<HourlyRow> = times[..2]
        .iter()
        .flat_map(|t| inventory.rows_at(0, *t))
        .collect();
    exported(&rows)
}

const SETTINGS: &str = include_str!("../config/vctp.yml");

fn tokens() -> Tokens {
    Tokens::new(
        b"0123456789abcdef0123456789abcdef",
        "vctp",
        "vctp-api",
        3600,
        60,
    )
}

fn valid_token() -> (String, Claims) {
    let now = chrono::Utc::now().timestamp();
    tokens()
        .issue(
            "alice",
            "uid=alice,dc=example",
            vctp::auth::Role::Admin,
            vec![],
            now,
        )
        .unwrap()
}

proptest! {
    // Integration tests have no lib.rs beside them for proptest's default place.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/fuzz.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_csv_importer_survives_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        if let Err(message) = import(&bytes) {
            prop_assert!(message.len() < MAX_MESSAGE, "{} bytes", message.len());
        }
    }

    #[test]
    fn the_csv_importer_survives_a_damaged_export(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = valid_csv();
        for (at, byte) in flips {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Err(message) = import(&bytes) {
            prop_assert!(message.len() < MAX_MESSAGE, "{} bytes", message.len());
        }
    }

    #[test]
    fn any_text_round_trips_through_export_and_import(
        texts in proptest::collection::vec("[!-~\u{a0}-\u{2fff}]([ -~\u{a0}-\u{2fff}\n\r\t]{0,40}[!-~\u{a0}-\u{2fff}])?", 9),
    ) {
        let day = Day::parse("2026-03-10").unwrap();
        let inventory = Inventory::new(1, 1, day, 1, 7);
        let t = inventory.snapshot_times(0, day)[0];
        let mut row = inventory.rows_at(0, t).next().unwrap();
        row.vm_uuid = texts[0].clone();
        row.inventory_id = texts[1].clone();
        row.name = texts[2].clone();
        row.event_key = texts[3].clone();
        row.cloud_id = texts[4].clone();
        row.resource_pool = texts[5].clone();
        row.datacenter = texts[6].clone();
        row.cluster = texts[7].clone();
        row.folder = texts[8].clone();
        prop_assert_eq!(import(&exported(std::slice::from_ref(&row))).unwrap(), vec![row]);
    }

    #[test]
    fn the_settings_loader_survives_any_text(text in "\\PC{0,400}") {
        if let Err(e) = Settings::parse(&text, Path::new("fuzz.yml")) {
            prop_assert!(e.to_string().len() < MAX_MESSAGE);
        }
    }

    #[test]
    fn the_settings_loader_survives_a_damaged_settings_file(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), "\\PC"), 1..8),
    ) {
        let mut text: Vec<char> = SETTINGS.chars().collect();
        for (at, replacement) in flips {
            let at = at.index(text.len());
            text.splice(at..=at, replacement.chars());
        }
        let text: String = text.into_iter().collect();
        if let Err(e) = Settings::parse(&text, Path::new("fuzz.yml")) {
            prop_assert!(e.to_string().len() < MAX_MESSAGE);
        }
    }

    #[test]
    fn the_jwt_decoder_refuses_any_text(token in "\\PC{0,300}") {
        prop_assert!(tokens().verify(&token).is_err());
    }

    #[test]
    fn the_jwt_decoder_refuses_three_parts_of_any_bytes(
        parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 3),
    ) {
        use base64::Engine as _;
        let encoded: Vec<String> = parts
            .iter()
            .map(|part| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(part))
            .collect();
        prop_assert!(tokens().verify(&encoded.join(".")).is_err());
    }

    #[test]
    fn a_damaged_jwt_is_refused_or_still_says_the_same(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<char>()), 1..6),
    ) {
        let (token, claims) = valid_token();
        let mut damaged: Vec<char> = token.chars().collect();
        for (at, c) in flips {
            let at = at.index(damaged.len());
            damaged[at] = c;
        }
        let damaged: String = damaged.into_iter().collect();
        // Base64's last character carries spare bits: a few flips decode to the same bytes.
        if let Ok(read) = tokens().verify(&damaged) {
            prop_assert_eq!(read, claims);
        }
    }
}
