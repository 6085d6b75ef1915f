//! Where a report is stored (DESIGN.md §5):
//! `reports/{hourly|daily|monthly}/<period>/<vcenter|all>.<xlsx|csv>`, and a month's FOCUS
//! file `reports/focus/<YYYY-MM>/<vcenter|all>.csv`.

use crate::objstore::{Error, check_key, check_segment};

/// `reports/{kind}/{period}/{scope}.{extension}`, e.g. `reports/daily/2026-03-10/all.xlsx`.
/// `kind` is hourly, daily, monthly or focus; `scope` a vCenter name, a `VCenterTarget`'s
/// `NAMESPACE/NAME` key (a folder per namespace: `…/finance/vc01.xlsx`) or `all`;
/// `extension` xlsx or csv (csv only for focus); `period` and each part of `scope` are single
/// key segments (as `objstore` checks keys).
pub fn report_key(kind: &str, period: &str, scope: &str, extension: &str) -> Result<String, Error> {
    let key = format!("reports/{kind}/{period}/{scope}.{extension}");
    let invalid = |problem: String| Error::Key {
        key: key.clone(),
        problem,
    };
    if !matches!(kind, "hourly" | "daily" | "monthly" | "focus") {
        return Err(invalid(format!(
            "the report kind {kind:?} is not hourly, daily, monthly or focus"
        )));
    }
    match (kind, extension) {
        ("focus", "csv") => {}
        ("focus", _) => {
            return Err(invalid(format!(
                "the extension {extension:?} of a focus report is not csv"
            )));
        }
        (_, "xlsx" | "csv") => {}
        _ => {
            return Err(invalid(format!(
                "the extension {extension:?} is not xlsx or csv"
            )));
        }
    }
    check_segment("period", period).map_err(invalid)?;
    match scope.split_once('/') {
        Some((namespace, name)) => {
            check_segment("scope namespace", namespace).map_err(invalid)?;
            check_segment("scope name", name).map_err(invalid)?;
        }
        None => check_segment("scope", scope).map_err(invalid)?,
    }
    check_key(&key)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_keys_follow_the_layout() {
        assert_eq!(
            report_key("daily", "2026-03-10", "all", "xlsx").unwrap(),
            "reports/daily/2026-03-10/all.xlsx"
        );
        assert_eq!(
            report_key("hourly", "2026-03-10T14", "vc1.example.com", "csv").unwrap(),
            "reports/hourly/2026-03-10T14/vc1.example.com.csv"
        );
        assert_eq!(
            report_key("monthly", "2026-03", "vc_2-east", "xlsx").unwrap(),
            "reports/monthly/2026-03/vc_2-east.xlsx"
        );
        assert_eq!(
            report_key("daily", "2026-03-10", "finance/vc01", "csv").unwrap(),
            "reports/daily/2026-03-10/finance/vc01.csv"
        );
        assert_eq!(
            report_key("focus", "2026-11", "all", "csv").unwrap(),
            "reports/focus/2026-11/all.csv"
        );
    }

    #[test]
    fn report_keys_refuse_unknown_kinds_and_extensions() {
        let e = report_key("weekly", "2026-03-10", "all", "xlsx").unwrap_err();
        assert!(e.to_string().contains("\"weekly\""), "{e}");
        assert_eq!(e.reason(), "InvalidObjectKey");
        let e = report_key("daily", "2026-03-10", "all", "pdf").unwrap_err();
        assert!(e.to_string().contains("\"pdf\""), "{e}");
        let e = report_key("focus", "2026-11", "all", "xlsx").unwrap_err();
        assert!(
            e.to_string()
                .contains("the extension \"xlsx\" of a focus report is not csv"),
            "{e}"
        );
    }

    #[test]
    fn scopes_with_slashes_dots_or_unsafe_characters_are_refused() {
        for scope in [
            "", "..", ".", ".hidden", "a/b/c", "../etc", "a/..", "/a", "a/", "vc1\n", "vc\u{7f}",
            "a b", "vc1:443", "a\\b", "vc#1", "é",
        ] {
            let e = report_key("daily", "2026-03-10", scope, "xlsx")
                .expect_err(&format!("scope {scope:?} must be refused"));
            assert!(matches!(e, Error::Key { .. }), "{e}");
        }
    }
}
