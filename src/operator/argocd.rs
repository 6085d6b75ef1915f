//! Tests of the Argo CD health checks the chart ships (`charts/vctp/argocd/*.lua`): each
//! script is run by a real Lua interpreter (`VCTP_TEST_LUA`, from `scripts/lua.sh`) on a
//! status the controllers' own status code built, as Argo CD runs it (the object as the
//! global `obj`, a table `hs` returned); and the chart README's `argocd-cm` snippet is
//! checked against the files so the two cannot drift.

use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The kinds and their script, in the order of the README snippet.
const SCRIPTS: [(&str, &str); 4] = [
    ("VCenterTarget", "vcentertarget.lua"),
    ("SnapshotSchedule", "snapshotschedule.lua"),
    ("AggregationJob", "aggregationjob.lua"),
    ("MetricsExport", "metricsexport.lua"),
];

/// Decodes the object (JSON null as nil, as Argo CD hands it over), runs the script with
/// only what Argo CD's sandbox offers, prints `hs.status` and `hs.message`.
const DRIVER: &str = r#"
local json = require("dkjson")
local object, _, err = json.decode(io.read("a"), 1, nil)
if err then error(err) end
local env = { obj = object, ipairs = ipairs, pairs = pairs, tostring = tostring,
  tonumber = tonumber, type = type, string = string, table = table, math = math }
local hs = assert(loadfile(os.getenv("VCTP_HEALTH_SCRIPT"), "t", env))()
io.write(hs.status, "\n", hs.message or "")
"#;

fn chart_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/vctp")
}

/// What Argo CD would show for `object` of `kind`: (`hs.status`, `hs.message`).
pub fn health(kind: &str, object: &impl Serialize) -> (String, String) {
    let lua = std::env::var("VCTP_TEST_LUA").unwrap_or_else(|_| {
        panic!(
            "VCTP_TEST_LUA is not set: `source scripts/lua.sh; lua_start` installs lua5.4 and \
             lua-dkjson and exports it"
        )
    });
    let file = SCRIPTS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, file)| chart_dir().join("argocd").join(file))
        .unwrap_or_else(|| panic!("no health script for {kind}"));
    let mut child = Command::new(&lua)
        .args(["-e", DRIVER])
        .env("VCTP_HEALTH_SCRIPT", &file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{lua}: {e}"));
    let json = serde_json::to_vec(object).unwrap();
    child.stdin.take().unwrap().write_all(&json).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, message) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    (status.to_string(), message.to_string())
}

/// The `argocd-cm` snippet the chart README shows, made from the script files.
fn snippet() -> String {
    let mut text = String::from(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\ndata:\n",
    );
    for (kind, file) in SCRIPTS {
        let script = std::fs::read_to_string(chart_dir().join("argocd").join(file)).unwrap();
        text.push_str(&format!(
            "  resource.customizations.health.vctp.io_{kind}: |\n"
        ));
        for line in script.lines() {
            match line {
                "" => text.push('\n'),
                line => text.push_str(&format!("    {line}\n")),
            }
        }
    }
    text
}

#[test]
fn the_chart_readme_shows_the_health_scripts_as_they_are() {
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).unwrap();
    let expected = snippet();
    assert!(
        readme.contains(&format!("```yaml\n{expected}```")),
        "charts/vctp/README.md's argocd-cm snippet differs from charts/vctp/argocd/*.lua; \
         replace it with:\n```yaml\n{expected}```"
    );
}

#[test]
#[ignore = "needs Lua: source scripts/lua.sh; lua_start (VCTP_TEST_LUA)"]
fn a_vcenter_target_is_progressing_until_checked_then_healthy_or_degraded() {
    use crate::operator::vcenter_target::{Check, status};
    let mut target: crate::crd::VCenterTarget = serde_json::from_value(serde_json::json!({
        "apiVersion": "vctp.io/v1alpha1", "kind": "VCenterTarget",
        "metadata": {"name": "vc01", "namespace": "finance", "generation": 2},
        "spec": {"url": "https://vc01.example.com/sdk", "credentialsSecretRef": {"name": "vc01-account"}},
    }))
    .unwrap();
    assert_eq!(health("VCenterTarget", &target).0, "Progressing");

    let mut checked = |check: Check| {
        let status = status(&[], &check, Some(2));
        target.status =
            Some(serde_json::from_value(serde_json::to_value(status).unwrap()).unwrap());
        health("VCenterTarget", &target)
    };
    let (state, message) = checked(Check::Reachable {
        version: "8.0.3 build-24022515".into(),
    });
    assert_eq!(state, "Healthy", "{message}");
    let (state, message) = checked(Check::MissingInput {
        reason: "SecretNotFound",
        message: "Secret finance/vc01-account (spec.credentialsSecretRef) does not exist".into(),
    });
    assert_eq!(state, "Degraded");
    assert!(
        message.starts_with("SecretNotFound: Secret finance/vc01-account"),
        "{message}"
    );
}
