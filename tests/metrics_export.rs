//! `vctp export-metrics`, `vctp import-metrics`, `vctp bundle` and `vctp obfuscation lookup`
//! as users run them: the real binary against real VictoriaMetrics nodes and vmauth
//! (`scripts/victoriametrics.sh`), bundles in the real S3-compatible server
//! (`scripts/s3.sh`). Every test starts its own nodes, seeded with the suite's 200 series × 6 h
//! × 15 s (common::vm::seed), and compares (labels, timestamp, value bits) sets.
// A whole test crate: its helpers fail the test by panicking, like its #[test]s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use anyhow::{Context, Result, ensure};
use common::metrics::{
    ALL, Bucket, Fault, KEY, Proxy, Watched, all_samples, entries, entry, export_seed, key_file,
    seconds, seeded, strings, vctp,
};
use common::vm::{self, AuthUser, Node, NodeOptions, Sample, VmAuth};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vctp::export::metadata::{Manifest, Metadata};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics and the S3 server: run scripts/test.sh"]
async fn a_bundle_in_s3_imports_into_another_node_sample_for_sample() -> Result<()> {
    let (source, seed) = seeded().await?;
    let target = dedup_target().await?;
    let bucket = Bucket::new("roundtrip");
    let mut args = export_seed(
        &source.url,
        &seed,
        &[
            "--no-obfuscation",
            "--out",
            &bucket.url(),
            "--prefix",
            "exports/case",
            "--run-id",
            "rt1",
        ],
    );
    args.extend(bucket.options());
    let exported = vctp(&args, &[]).await?.expect(0)?;
    ensure_says(&exported.stdout, "200 series, 288000 samples")?;
    let manifest: Manifest = bucket.json("exports/case/rt1.manifest.json").await?;
    ensure!(
        (manifest.series, manifest.samples) == (200, 288_000),
        "{manifest:?}"
    );
    let dir = tempfile::tempdir()?;
    let zip = bucket.download("exports/case/rt1.zip", dir.path()).await?;
    let metadata: Metadata = serde_json::from_slice(&entry(&zip, "metadata.json")?)?;
    ensure!(
        (metadata.series, metadata.samples, metadata.metrics_count) == (200, 288_000, 200),
        "{metadata:?}"
    );
    ensure!(metadata.source.url.as_deref() == Some(source.url.as_str()));
    // No parts are left once the bundle is written.
    let left: Vec<String> = bucket
        .objects()
        .list("exports/case")
        .await?
        .into_iter()
        .map(|o| o.key)
        .collect();
    ensure!(
        left == [
            "exports/case/rt1.manifest.json",
            "exports/case/rt1.zip",
            "exports/case/rt1.zip.sha256"
        ],
        "{left:?}"
    );

    let mut args = strings(&[
        "import-metrics",
        "exports/case/rt1.zip",
        "--from-store",
        &bucket.url(),
        "--target-url",
        &target.url,
    ]);
    args.extend(bucket.options());
    let imported = vctp(&args, &[]).await?.expect(0)?;
    ensure!(
        imported.stdout.contains("288000 samples")
            && imported.stdout.contains("verified: 200 series"),
        "{}",
        imported.stdout
    );
    let sent = all_samples(&source, &seed).await?;
    ensure!(
        sent.len() == seed.samples,
        "{} samples in the source",
        sent.len()
    );
    let got = all_samples(&target, &seed).await?;
    ensure!(
        got == sent,
        "{} samples differ",
        got.symmetric_difference(&sent).count()
    );
    Ok(())
}

/// The lines of `metrics.jsonl` in `zip`, sorted: two exports of the same data compare equal
/// whatever order the server answered in.
fn sorted_lines(zip: &Path) -> Result<Vec<String>> {
    let text = String::from_utf8(entry(zip, "metrics.jsonl")?)?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    Ok(lines)
}

/// The (series, sample) pairs of a bundle, as the target would hold them.
fn bundle_samples(zip: &Path) -> Result<BTreeSet<Sample>> {
    vm::samples(&String::from_utf8(entry(zip, "metrics.jsonl")?)?)
}

/// An export of the seed into `bucket` under `exports/case/<run>`, with the key in `dir`.
fn export_args(
    source: &str,
    seed: &vm::Seed,
    bucket: &Bucket,
    run: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut args = export_seed(
        source,
        seed,
        &[
            "--out",
            &bucket.url(),
            "--prefix",
            "exports/case",
            "--run-id",
            run,
        ],
    );
    args.extend(strings(extra));
    args.extend(bucket.options());
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics and the S3 server: run scripts/test.sh"]
async fn an_obfuscated_bundle_holds_no_original_value_and_no_key_and_lookup_finds_every_series()
-> Result<()> {
    let (source, seed) = seeded().await?;
    let bucket = Bucket::new("obfuscated");
    let dir = tempfile::tempdir()?;
    let key = key_file(dir.path(), KEY)?;
    let key_arg = key.display().to_string();
    let args = export_args(
        &source.url,
        &seed,
        &bucket,
        "obf1",
        &[
            "--obfuscation-key-file",
            &key_arg,
            "--obfuscate-label",
            "pod",
        ],
    );
    vctp(&args, &[]).await?.expect(0)?;
    let zip = bucket.download("exports/case/obf1.zip", dir.path()).await?;

    let source_samples = all_samples(&source, &seed).await?;
    let originals: BTreeSet<String> = source_samples
        .iter()
        .flat_map(|(labels, _, _)| label_values(labels, &["instance", "job", "pod"]))
        .collect();
    ensure!(originals.len() > 200, "{} originals", originals.len());
    let key_forms = [
        KEY.to_string(),
        KEY.bytes().map(|b| format!("{b:02x}")).collect::<String>(),
        base64_of(KEY.as_bytes()),
        base64_of(&hex_bytes(KEY)),
    ];
    let mut texts: Vec<(String, String)> = entries(&zip)?
        .into_iter()
        .map(|(name, bytes)| (name, String::from_utf8_lossy(&bytes).into_owned()))
        .collect();
    for key in [
        "exports/case/obf1.manifest.json",
        "exports/case/obf1.zip.sha256",
    ] {
        let bytes = bucket.objects().get(key).await?;
        texts.push((
            key.to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    let hosts: BTreeSet<String> = source_samples
        .iter()
        .flat_map(|(labels, _, _)| label_values(labels, &["instance"]))
        .filter_map(|instance| instance.split(':').next().map(str::to_string))
        .collect();
    for (name, text) in &texts {
        for original in &originals {
            ensure!(
                !text.contains(&format!("\"{original}\"")),
                "{original} in {name}"
            );
        }
        // Not even inside another text (a selector, the README).
        for host in &hosts {
            ensure!(!text.contains(host.as_str()), "{host} in {name}");
        }
        for form in &key_forms {
            ensure!(!text.contains(form.as_str()), "the key ({form}) in {name}");
        }
    }
    let bundle = bundle_samples(&zip)?;
    ensure!(bundle.len() == seed.samples);
    let series: BTreeSet<&String> = bundle.iter().map(|(labels, _, _)| labels).collect();
    ensure!(series.len() == 200, "{} series", series.len());

    // The key holder maps every source series onto the bundle with `obfuscation lookup`.
    let mut mapping = std::collections::BTreeMap::new();
    for label in ["instance", "job", "pod"] {
        let values: BTreeSet<String> = source_samples
            .iter()
            .flat_map(|(labels, _, _)| label_values(labels, &[label]))
            .collect();
        let mut args = strings(&[
            "obfuscation",
            "lookup",
            "--key-file",
            &key_arg,
            "--label",
            label,
        ]);
        args.extend(values.iter().cloned());
        let looked_up = vctp(&args, &[]).await?.expect(0)?;
        for line in looked_up.stdout.lines() {
            let (value, pseudonym) = line.split_once('\t').context("VALUE\tPSEUDONYM")?;
            mapping.insert(
                (label.to_string(), value.to_string()),
                pseudonym.to_string(),
            );
        }
    }
    let expected: BTreeSet<Sample> = source_samples
        .iter()
        .map(|(labels, t, v)| (rename(labels, &mapping), *t, *v))
        .collect();
    ensure!(
        expected == bundle,
        "{} samples differ",
        expected.symmetric_difference(&bundle).count()
    );
    Ok(())
}

/// The values of `names` in a sample's label text `name{a="x",…}`.
fn label_values(labels: &str, names: &[&str]) -> Vec<String> {
    parse_labels(labels)
        .into_iter()
        .filter(|(name, _)| names.contains(&name.as_str()))
        .map(|(_, value)| value)
        .collect()
}

/// `name{a="x",b="y"}` as pairs (the seed's values hold no quotes or commas).
fn parse_labels(labels: &str) -> Vec<(String, String)> {
    let inner = labels
        .split_once('{')
        .map(|(_, rest)| rest.trim_end_matches('}'))
        .unwrap_or_default();
    inner
        .split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_string(), value.trim_matches('"').to_string()))
        .collect()
}

/// A sample's label text with the values found in `mapping` replaced.
fn rename(labels: &str, mapping: &std::collections::BTreeMap<(String, String), String>) -> String {
    let name = labels.split('{').next().unwrap_or_default();
    let pairs: Vec<String> = parse_labels(labels)
        .into_iter()
        .map(|(label, value)| {
            let value = mapping
                .get(&(label.clone(), value.clone()))
                .cloned()
                .unwrap_or(value);
            format!("{label}=\"{value}\"")
        })
        .collect();
    let mut pairs = pairs;
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics and the S3 server: run scripts/test.sh"]
async fn the_same_key_gives_the_same_pseudonyms_across_exports_and_another_key_none() -> Result<()>
{
    let (source, seed) = seeded().await?;
    let bucket = Bucket::new("stable");
    let dir = tempfile::tempdir()?;
    let key = key_file(dir.path(), KEY)?.display().to_string();
    let other_dir = tempfile::tempdir()?;
    let other = key_file(other_dir.path(), &KEY.replace('4', "5"))?
        .display()
        .to_string();
    let hour = 3_600_000;
    let run = |name: &str, start: i64, end: i64, key: &str| {
        let mut args = strings(&[
            "export-metrics",
            "--source-url",
            &source.url,
            "--match",
            ALL,
            "--start",
            &seconds(start),
            "--end",
            &seconds(end),
            "--out",
            &bucket.url(),
            "--prefix",
            "exports/case",
            "--run-id",
            name,
            "--obfuscation-key-file",
            key,
        ]);
        args.extend(bucket.options());
        args
    };
    // Two overlapping ranges with one key, the second range with another key.
    vctp(
        &run("a", seed.start_ms, seed.start_ms + 4 * hour, &key),
        &[],
    )
    .await?
    .expect(0)?;
    vctp(&run("b", seed.start_ms + 2 * hour, seed.end_ms, &key), &[])
        .await?
        .expect(0)?;
    vctp(
        &run("c", seed.start_ms + 2 * hour, seed.end_ms, &other),
        &[],
    )
    .await?
    .expect(0)?;
    async fn series(bucket: &Bucket, dir: &Path, run: &str) -> Result<BTreeSet<String>> {
        let path = bucket
            .download(&format!("exports/case/{run}.zip"), dir)
            .await?;
        Ok(bundle_samples(&path)?
            .into_iter()
            .map(|(l, _, _)| l)
            .collect())
    }
    let (a, b, c) = (
        series(&bucket, dir.path(), "a").await?,
        series(&bucket, dir.path(), "b").await?,
        series(&bucket, dir.path(), "c").await?,
    );
    ensure!(
        a.len() == 200 && a == b,
        "{} series differ between a and b",
        a.symmetric_difference(&b).count()
    );
    let pseudonyms = |set: &BTreeSet<String>| -> BTreeSet<String> {
        set.iter()
            .flat_map(|labels| label_values(labels, &["instance", "job"]))
            .collect()
    };
    let shared: Vec<String> = pseudonyms(&a)
        .intersection(&pseudonyms(&c))
        .cloned()
        .collect();
    ensure!(shared.is_empty(), "another key shares {shared:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics and the S3 server: run scripts/test.sh"]
async fn a_run_stopped_by_sigterm_resumes_to_the_same_bundle_as_an_uninterrupted_one() -> Result<()>
{
    let (source, seed) = seeded().await?;
    let bucket = Bucket::new("resume");
    let dir = tempfile::tempdir()?;
    let key = key_file(dir.path(), KEY)?.display().to_string();
    // 12 windows of 30 minutes.
    let args = |run: &str, resume: bool| {
        let mut extra = vec!["--obfuscation-key-file", key.as_str(), "--window", "30m"];
        if resume {
            extra.push("--resume");
        }
        export_args(&source.url, &seed, &bucket, run, &extra)
    };
    vctp(&args("whole", false), &[]).await?.expect(0)?;

    let mut stopped = Watched::start(&args("cut", false))?;
    stopped.wait_for("3/12 windows").await?;
    let signalled = Instant::now();
    stopped.signal("-TERM")?;
    let code = stopped.exit_code().await?;
    ensure!(code == 143, "exit status {code} after SIGTERM");
    ensure!(
        signalled.elapsed() < Duration::from_secs(5),
        "took {:?}",
        signalled.elapsed()
    );
    let objects = bucket.objects();
    for absent in ["exports/case/cut.zip", "exports/case/cut.manifest.json"] {
        ensure!(objects.size_of(absent).await?.is_none(), "{absent} exists");
    }
    ensure!(
        objects
            .size_of("exports/case/cut.parts/checkpoint.json")
            .await?
            .is_some(),
        "the checkpoint is gone"
    );
    let open = common::s3::open_uploads(&bucket.prefix);
    ensure!(open.is_empty(), "multipart uploads left open: {open:?}");

    let resumed = vctp(&args("cut", true), &[]).await?.expect(0)?;
    let done_before: u64 = resumed
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("note: resuming after "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no resume note:\n{}", resumed.stderr))?;
    ensure!(
        (3..12).contains(&done_before),
        "resumed after {done_before} windows"
    );

    let whole = bucket
        .download("exports/case/whole.zip", dir.path())
        .await?;
    let cut = bucket.download("exports/case/cut.zip", dir.path()).await?;
    let (whole, cut) = (sorted_lines(&whole)?, sorted_lines(&cut)?);
    ensure!(
        whole == cut,
        "the resumed bundle differs from the uninterrupted one"
    );
    let samples = bundle_samples(&bucket.download("exports/case/cut.zip", dir.path()).await?)?;
    let pairs: BTreeSet<(&String, i64)> = samples.iter().map(|(l, t, _)| (l, *t)).collect();
    ensure!(
        pairs.len() == samples.len() && samples.len() == seed.samples,
        "{} samples, {} distinct (series, timestamp)",
        samples.len(),
        pairs.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn a_cancelled_export_leaves_no_bundle_and_no_unfinished_upload() -> Result<()> {
    let (node, seed) = seeded().await?;
    let source = Proxy::start(node.base(), Fault::Delay(Duration::from_millis(250))).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("store");
    let args = export_seed(
        &source.url,
        &seed,
        &[
            "--no-obfuscation",
            "--window",
            "30m",
            "--out",
            &out.display().to_string(),
            "--run-id",
            "cancelled",
        ],
    );
    let mut running = Watched::start(&args)?;
    running.wait_for("1/12 windows").await?;
    let signalled = Instant::now();
    running.signal("-TERM")?;
    let code = running.exit_code().await?;
    ensure!(code == 143, "exit status {code}");
    ensure!(signalled.elapsed() < Duration::from_secs(5));
    let files = common::metrics::files(&out)?;
    ensure!(
        files
            .iter()
            .all(|f| f.starts_with("exports/cancelled.parts/") && !f.contains('#')),
        "{files:?}"
    );
    ensure!(
        files.iter().any(|f| f.ends_with("checkpoint.json")),
        "{files:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn a_query_only_vmauth_user_falls_back_to_query_range_and_a_wrong_password_is_unauthorized()
-> Result<()> {
    let (source, seed) = seeded().await?;
    let auth = VmAuth::start(
        &source.url,
        &[AuthUser::QueryOnly {
            username: "support".into(),
            password: "reader-pass-9".into(),
        }],
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let credentials = dir.path().join("basic");
    std::fs::write(&credentials, "support:reader-pass-9\n")?;
    let out = dir.path().join("store");
    let export = |credentials: &Path, run: &str| {
        export_seed(
            &auth.url,
            &seed,
            &[
                "--source-kind",
                "vmauth",
                "--basic-auth-file",
                &credentials.display().to_string(),
                "--step",
                "15s",
                "--no-obfuscation",
                "--out",
                &out.display().to_string(),
                "--run-id",
                run,
            ],
        )
    };
    let ran = vctp(&export(&credentials, "fallback"), &[])
        .await?
        .expect(0)?;
    ensure_says(&ran.stderr, "note: reading with query_range")?;
    ensure_says(&ran.stderr, "missing route")?;
    let zip = out.join("exports/fallback.zip");
    let metadata: Metadata = serde_json::from_slice(&entry(&zip, "metadata.json")?)?;
    ensure!(metadata.method == vctp::export::checkpoint::Method::QueryRange);
    ensure!(
        metadata
            .method_reason
            .as_deref()
            .is_some_and(|r| r.contains("missing route"))
    );

    // What the source's own query_range answers at the same points.
    let answer: serde_json::Value = source
        .client()
        .get(format!("{}/api/v1/query_range", source.url))
        .query(&[
            ("query", ALL),
            ("start", &seconds(seed.start_ms)),
            ("end", &seconds(seed.end_ms - 1)),
            ("step", "15s"),
        ])
        .send()
        .await?
        .bytes()
        .await
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b))??;
    let mut expected = BTreeSet::new();
    for series in answer["data"]["result"].as_array().context("result")? {
        let labels: std::collections::BTreeMap<String, String> =
            serde_json::from_value(series["metric"].clone())?;
        let name = labels.get("__name__").cloned().unwrap_or_default();
        let pairs: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k.as_str() != "__name__")
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect();
        let text = format!("{name}{{{}}}", pairs.join(","));
        for point in series["values"].as_array().context("values")? {
            let t = (point[0].as_f64().context("t")? * 1000.0).round() as i64;
            let v = match point[1].as_str().context("v")? {
                "+Inf" => f64::INFINITY,
                other => other.parse::<f64>()?,
            };
            expected.insert((text.clone(), t, v.to_bits()));
        }
    }
    let got = bundle_samples(&zip)?;
    ensure!(
        !expected.is_empty() && got == expected,
        "{} samples differ",
        got.symmetric_difference(&expected).count()
    );
    ensure!(metadata.samples == got.len() as u64);

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "support:not-the-password-7\n")?;
    let refused = vctp(&export(&wrong, "refused"), &[]).await?.expect(2)?;
    let output = format!("{}{}", refused.stdout, refused.stderr);
    ensure_says(&output, "refused the credentials")?;
    for secret in [
        "not-the-password-7",
        &base64_of(b"support:not-the-password-7"),
    ] {
        ensure!(!output.contains(secret), "{secret} shown:\n{output}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn a_cluster_source_is_read_under_its_tenant_path() -> Result<()> {
    let node = Node::start(NodeOptions {
        path_prefix: Some("/select/1:2/prometheus".into()),
        ..NodeOptions::default()
    })
    .await?;
    let seed = vm::seed();
    node.import(seed.jsonl.as_bytes()).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("store");
    let args = |tenant: &str, run: &str| {
        export_seed(
            node.base(),
            &seed,
            &[
                "--source-kind",
                "cluster",
                "--tenant",
                tenant,
                "--no-obfuscation",
                "--method",
                "export",
                "--out",
                &out.display().to_string(),
                "--run-id",
                run,
            ],
        )
    };
    vctp(&args("1:2", "tenant"), &[]).await?.expect(0)?;
    let got = bundle_samples(&out.join("exports/tenant.zip"))?;
    ensure!(
        got == all_samples(&node, &seed).await?,
        "the bundle differs from the tenant's data"
    );
    // Another tenant's path is not served: a refusal, not an empty bundle.
    let other = vctp(&args("3", "other"), &[]).await?.expect(2)?;
    ensure_says(&other.stderr, "HTTP 400")?;
    Ok(())
}

/// A bundle of the seed written to a local directory store: `(store dir, zip path)`.
async fn local_bundle(
    source: &Node,
    seed: &vm::Seed,
    dir: &Path,
    run: &str,
) -> Result<(PathBuf, PathBuf)> {
    let out = dir.join("store");
    let args = export_seed(
        &source.url,
        seed,
        &[
            "--no-obfuscation",
            "--out",
            &out.display().to_string(),
            "--run-id",
            run,
        ],
    );
    vctp(&args, &[]).await?.expect(0)?;
    let zip = out.join(format!("exports/{run}.zip"));
    Ok((out, zip))
}

fn import_args(bundle: &Path, target: &Node, extra: &[&str]) -> Vec<String> {
    let mut args = strings(&[
        "import-metrics",
        &bundle.display().to_string(),
        "--target-url",
        &target.url,
    ]);
    args.extend(strings(extra));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics and the S3 server: run scripts/test.sh"]
async fn a_corrupt_or_incomplete_bundle_is_refused_and_the_target_stays_empty() -> Result<()> {
    let (source, seed) = seeded().await?;
    let target = Node::start(NodeOptions::default()).await?;
    let dir = tempfile::tempdir()?;
    let (_, zip) = local_bundle(&source, &seed, dir.path(), "good").await?;
    vctp(
        &strings(&["bundle", "verify", &zip.display().to_string()]),
        &[],
    )
    .await?
    .expect(0)?;

    // One flipped byte in the middle of the data: the SHA-256 check refuses it first.
    let flipped = dir.path().join("flipped.zip");
    let mut bytes = std::fs::read(&zip)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&flipped, &bytes)?;
    std::fs::copy(
        format!("{}.sha256", zip.display()),
        format!("{}.sha256", flipped.display()),
    )?;
    let refused = vctp(&import_args(&flipped, &target, &[]), &[])
        .await?
        .expect(2)?;
    ensure_says(&refused.stderr, "SHA-256")?;
    ensure_says(&refused.stderr, "nothing was imported")?;
    // Without a checksum to compare, the CRC catches it while reading.
    std::fs::remove_file(format!("{}.sha256", flipped.display()))?;
    let no_sum = vctp(&import_args(&flipped, &target, &[]), &[])
        .await?
        .expect(2)?;
    ensure_says(&no_sum.stderr, "--allow-unverified")?;
    let crc = vctp(
        &strings(&[
            "bundle",
            "verify",
            &flipped.display().to_string(),
            "--sha256",
            &"0".repeat(64),
        ]),
        &[],
    )
    .await?
    .expect(2)?;
    ensure_says(&crc.stderr, "SHA-256")?;

    // A truncated file: not a ZIP any more, or a CRC error.
    let truncated = dir.path().join("truncated.zip");
    std::fs::write(
        &truncated,
        &std::fs::read(&zip)?[..std::fs::metadata(&zip)?.len() as usize - 100],
    )?;
    let cut = vctp(
        &import_args(&truncated, &target, &["--allow-unverified"]),
        &[],
    )
    .await?
    .expect(2)?;
    ensure!(
        cut.stderr.contains("not a readable ZIP") || cut.stderr.contains("corrupt"),
        "{}",
        cut.stderr
    );
    target.force_flush().await?;
    let held = target
        .export_text(
            ALL,
            seed.start_ms as f64 / 1000.0,
            seed.end_ms as f64 / 1000.0,
        )
        .await?;
    ensure!(
        held.trim().is_empty(),
        "the target holds data: {}",
        &held[..held.len().min(200)]
    );

    // In object storage a bundle without its manifest is incomplete.
    let bucket = Bucket::new("incomplete");
    let objects = bucket.objects();
    objects.put("exports/x/r.zip", std::fs::read(&zip)?).await?;
    let mut args = strings(&[
        "import-metrics",
        "exports/x/r.zip",
        "--from-store",
        &bucket.url(),
        "--target-url",
        &target.url,
    ]);
    args.extend(bucket.options());
    let incomplete = vctp(&args, &[]).await?.expect(2)?;
    ensure_says(&incomplete.stderr, "no manifest")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn an_import_killed_midway_resumes_to_exact_counts() -> Result<()> {
    let (source, seed) = seeded().await?;
    let target = dedup_target().await?;
    let dir = tempfile::tempdir()?;
    let (_, zip) = local_bundle(&source, &seed, dir.path(), "killed").await?;
    let args = |resume: bool| {
        let mut extra = vec!["--chunk-bytes", "262144"];
        if resume {
            extra.push("--resume");
        }
        import_args(&zip, &target, &extra)
    };
    let mut running = Watched::start(&args(false))?;
    running.wait_for("import: chunk 3 sent").await?;
    running.signal("-KILL")?;
    running.exit_code().await?;
    let resumed = vctp(&args(true), &[]).await?.expect(0)?;
    ensure_says(&resumed.stderr, "note: resuming after")?;
    ensure_says(&resumed.stdout, "verified: 200 series")?;
    ensure!(
        all_samples(&target, &seed).await? == all_samples(&source, &seed).await?,
        "the target differs from the source"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn a_connection_dropped_before_a_chunk_is_retried_and_counts_stay_exact() -> Result<()> {
    let (source, seed) = seeded().await?;
    let target = dedup_target().await?;
    let dir = tempfile::tempdir()?;
    let (_, zip) = local_bundle(&source, &seed, dir.path(), "dropped").await?;
    // The 3rd import request's connection is closed before it reaches the node.
    let proxy = Proxy::start(target.base(), Fault::DropRequest(3)).await?;
    let mut args = import_args(&zip, &target, &["--chunk-bytes", "262144"]);
    let url = args
        .iter()
        .position(|a| a == "--target-url")
        .context("--target-url")?
        + 1;
    args[url] = proxy.url.clone();
    let ran = vctp(&args, &[]).await?.expect(0)?;
    ensure_says(&ran.stderr, "retry 1")?;
    ensure_says(&ran.stdout, "verified: 200 series")?;
    ensure_says(&ran.stdout, "may be stored twice")?;
    ensure!(all_samples(&target, &seed).await? == all_samples(&source, &seed).await?);
    Ok(())
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn a_shift_moves_every_sample_exactly_and_samples_beyond_retention_are_trimmed_and_counted()
-> Result<()> {
    let (source, seed) = seeded().await?;
    let dir = tempfile::tempdir()?;
    let (_, zip) = local_bundle(&source, &seed, dir.path(), "shifted").await?;
    let source_samples = all_samples(&source, &seed).await?;

    // A fixed shift: every sample one hour later, nothing else changed.
    let shifted = Node::start(NodeOptions::default()).await?;
    let hour = 3_600_000i64;
    vctp(
        &import_args(&zip, &shifted, &["--shift-ms", &hour.to_string()]),
        &[],
    )
    .await?
    .expect(0)?;
    let moved: BTreeSet<Sample> = source_samples
        .iter()
        .map(|(l, t, v)| (l.clone(), t + hour, *v))
        .collect();
    let text = shifted
        .export_text(
            ALL,
            (seed.start_ms + hour) as f64 / 1000.0,
            (seed.end_ms + hour) as f64 / 1000.0,
        )
        .await?;
    ensure!(vm::samples(&text)? == moved, "the shifted samples differ");

    // To now: the newest sample one minute ago; on a target keeping one day, moved so that
    // the oldest 2 of the 6 hours fall beyond its retention.
    let day = Node::start(NodeOptions {
        retention: Some("1d".into()),
        ..NodeOptions::default()
    })
    .await?;
    let before = chrono::Utc::now().timestamp_millis();
    let ran = vctp(&import_args(&zip, &day, &["--shift-to-now"]), &[])
        .await?
        .expect(0)?;
    let after = chrono::Utc::now().timestamp_millis();
    ensure_says(&ran.stdout, "(0 older than")?;
    let last = seed.end_ms - vm::SEED_STEP_MS;
    let newest = vm::samples(
        &day.export_text(
            ALL,
            (before - 2 * hour) as f64 / 1000.0,
            after as f64 / 1000.0,
        )
        .await?,
    )?
    .iter()
    .map(|(_, t, _)| *t)
    .max()
    .context("nothing imported")?;
    ensure!(
        newest <= after - 60_000 && newest >= before - 61_000 && (newest - last) % 1000 == 0,
        "newest sample at {newest}, import between {before} and {after}"
    );

    let trimmed = Node::start(NodeOptions {
        retention: Some("1d".into()),
        ..NodeOptions::default()
    })
    .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let shift = (now - 24 * hour - 2 * hour) - seed.start_ms;
    let ran = vctp(
        &import_args(&zip, &trimmed, &["--shift-ms", &shift.to_string()]),
        &[],
    )
    .await?
    .expect(0)?;
    let count = |text: &str, marker: &str| -> Option<u64> {
        let before = text.split(marker).next()?;
        before
            .split_whitespace()
            .last()?
            .trim_start_matches('(')
            .parse()
            .ok()
    };
    let kept = count(&ran.stdout, "samples (").context("samples kept")?;
    let dropped = count(&ran.stdout, "older than").context("samples trimmed")?;
    ensure!(kept + dropped == seed.samples as u64, "{}", ran.stdout);
    // About a third of the 6 hours is beyond the retention (a few seconds pass meanwhile).
    let third = seed.samples as u64 / 3;
    ensure!(
        dropped.abs_diff(third) < 2_000,
        "{dropped} trimmed, about {third} expected"
    );
    ensure_says(&ran.stdout, "verified: 200 series")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn stdout_gets_the_rewritten_lines_and_inspect_describes_a_bundle() -> Result<()> {
    let (source, seed) = seeded().await?;
    let dir = tempfile::tempdir()?;
    let key = key_file(dir.path(), KEY)?.display().to_string();
    let ran = vctp(
        &strings(&[
            "export-metrics",
            "--source-url",
            &source.url,
            "--job",
            "payments-api",
            "--start",
            &seconds(seed.start_ms),
            "--end",
            &seconds(seed.end_ms),
            "--obfuscation-key-file",
            &key,
            "--stdout",
        ]),
        &[],
    )
    .await?
    .expect(0)?;
    let lines = vm::samples(&ran.stdout)?;
    // 20 of the 100 instances run payments-api, with two series each.
    let series: BTreeSet<&String> = lines.iter().map(|(l, _, _)| l).collect();
    ensure!(series.len() == 40, "{} series", series.len());
    ensure!(
        !ran.stdout.contains("\"payments-api\""),
        "a job name is shown"
    );
    ensure_says(&ran.stderr, "40 series")?;

    let (_, zip) = local_bundle(&source, &seed, dir.path(), "inspected").await?;
    let inspected = vctp(
        &strings(&["bundle", "inspect", &zip.display().to_string()]),
        &[],
    )
    .await?
    .expect(0)?;
    for expected in [
        "export id:   inspected",
        "series:      200",
        "samples:     288000",
        "metrics.jsonl",
    ] {
        ensure_says(&inspected.stdout, expected)?;
    }
    let bad = vctp(
        &strings(&[
            "export-metrics",
            "--source-url",
            &source.url,
            "--match",
            ALL,
            "--last",
            "6x",
            "--stdout",
            "--no-obfuscation",
        ]),
        &[],
    )
    .await?
    .expect(2)?;
    ensure_says(&bad.stderr, "invalid --last")?;
    let no_key = vctp(
        &strings(&[
            "export-metrics",
            "--source-url",
            &source.url,
            "--match",
            ALL,
            "--last",
            "1h",
            "--stdout",
        ]),
        &[],
    )
    .await?
    .expect(2)?;
    ensure_says(&no_key.stderr, "openssl rand -hex 32")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn vctp_standalone_runs_a_scheduled_export_from_its_settings() -> Result<()> {
    let (source, seed) = seeded().await?;
    let dir = tempfile::tempdir()?;
    let key = key_file(dir.path(), KEY)?;
    // Every minute, over the 8 days before the tick: the seed (a week old) is in range.
    let yaml = format!(
        r#"settings:
  metrics_exports:
    - name: nightly
      spec:
        source: {{url: "{}"}}
        selectors: ['{ALL}']
        schedule: "* * * * *"
        lookbackSeconds: 691200
        destination: {{retention: {{keepLast: 2}}}}
      credentials:
        obfuscation_key_file: {}
"#,
        source.url,
        key.display()
    );
    let settings = vctp::config::Settings::parse(&yaml, Path::new("vctp.yml"))?;
    let db = common::sqlite().await;
    let reports = dir.path().join("reports");
    let scheduler = vctp::standalone::Scheduler {
        reports: vctp::objstore::Objects::from_url(
            reports.to_str().context("path")?,
            &Default::default(),
        )?,
        plan: vctp::standalone::Timetable::from_settings(&settings)?,
        engine: vctp::aggregate::Engine::Rust,
        collector: vctp::inventory::collector::Collector::from_settings(&settings, String::new()),
        store: db.store.clone(),
        settings,
        targets: Vec::new(),
    };
    let store = db.store.clone();
    let recorded = async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if store
                .job_run("export:nightly")
                .await
                .ok()
                .flatten()
                .is_some()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    scheduler.run(recorded).await?;
    let run = db
        .store
        .job_run("export:nightly")
        .await?
        .context("the export never ran")?;
    ensure!(run.success, "{}", run.error);
    let files = common::metrics::files(&reports)?;
    let zip = files
        .iter()
        .find(|f| f.starts_with("exports/standalone/nightly/") && f.ends_with(".zip"))
        .with_context(|| format!("no bundle in {files:?}"))?;
    let metadata: Metadata = serde_json::from_slice(&entry(&reports.join(zip), "metadata.json")?)?;
    ensure!(
        (metadata.series, metadata.samples) == (200, seed.samples as u64),
        "{metadata:?}"
    );
    ensure!(
        files.iter().any(|f| f.ends_with(".manifest.json")),
        "{files:?}"
    );
    let err = vctp::config::Settings::parse(
        &yaml.replace("lookbackSeconds", "lookback"),
        Path::new("vctp.yml"),
    )
    .unwrap_err()
    .to_string();
    ensure_says(&err, "spec.lookback")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn a_window_that_times_out_is_halved_and_the_bundle_is_still_whole() -> Result<()> {
    let (node, seed) = seeded().await?;
    // Request 1 is the probe; request 2, the first window, answers after the timeout.
    let source = Proxy::start(node.base(), Fault::DelayOne(2, Duration::from_secs(8))).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("store");
    let ran = vctp(
        &export_seed(
            &source.url,
            &seed,
            &[
                "--no-obfuscation",
                "--window",
                "1h",
                "--timeout-seconds",
                "5",
                "--out",
                &out.display().to_string(),
                "--run-id",
                "split",
            ],
        ),
        &[],
    )
    .await?
    .expect(0)?;
    ensure!(
        ran.stderr
            .contains("2026-11-30T00:00:00Z to 2026-11-30T01:00:00Z timed out; halved"),
        "{}",
        ran.stderr
    );
    let zip = out.join("exports/split.zip");
    let metadata: Metadata = serde_json::from_slice(&entry(&zip, "metadata.json")?)?;
    ensure!(
        (metadata.windows, metadata.split_windows, metadata.samples) == (7, 1, 288_000),
        "{metadata:?}"
    );
    ensure!(bundle_samples(&zip)? == all_samples(&node, &seed).await?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn other_settings_start_a_checkpointed_run_over_and_retention_keeps_the_newest_bundles()
-> Result<()> {
    let (node, seed) = seeded().await?;
    let source = Proxy::start(node.base(), Fault::Delay(Duration::from_millis(250))).await?;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("store").display().to_string();
    let args = |run: &str, window: &str, extra: &[&str]| {
        let mut args = export_seed(
            &source.url,
            &seed,
            &[
                "--no-obfuscation",
                "--window",
                window,
                "--out",
                &out,
                "--run-id",
                run,
            ],
        );
        args.extend(strings(extra));
        args
    };
    let mut first = Watched::start(&args("changed", "30m", &[]))?;
    first.wait_for("2/12 windows").await?;
    first.signal("-TERM")?;
    ensure!(first.exit_code().await? == 143);
    let again = vctp(&args("changed", "1h", &["--resume"]), &[])
        .await?
        .expect(0)?;
    ensure!(
        again.stderr.contains("other settings; starting over")
            && !again.stderr.contains("resuming"),
        "{}",
        again.stderr
    );
    ensure_says(&again.stdout, "288000 samples")?;

    // Three more bundles under the same prefix, keeping the newest two.
    for run in ["r1", "r2", "r3"] {
        vctp(&args(run, "6h", &["--keep-last", "2"]), &[])
            .await?
            .expect(0)?;
    }
    let files = common::metrics::files(&dir.path().join("store"))?;
    let bundles: Vec<&String> = files.iter().filter(|f| f.ends_with(".zip")).collect();
    ensure!(bundles == ["exports/r2.zip", "exports/r3.zip"], "{files:?}");
    ensure!(
        !files.iter().any(|f| f.starts_with("exports/r1.")),
        "{files:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs VictoriaMetrics: run scripts/test.sh"]
async fn an_import_labels_its_series_is_refused_by_a_read_only_gateway_and_names_what_went_missing()
-> Result<()> {
    let (source, seed) = seeded().await?;
    let dir = tempfile::tempdir()?;
    let (_, zip) = local_bundle(&source, &seed, dir.path(), "labelled").await?;

    let target = Node::start(NodeOptions::default()).await?;
    let ran = vctp(
        &import_args(&zip, &target, &["--extra-label", "case=4711"]),
        &[],
    )
    .await?
    .expect(0)?;
    ensure_says(&ran.stdout, "verified: 200 series")?;
    let labelled = target
        .export_text(
            r#"{case="4711"}"#,
            seed.start_ms as f64 / 1000.0,
            seed.end_ms as f64 / 1000.0,
        )
        .await?;
    ensure!(vm::samples(&labelled)?.len() == seed.samples);

    // A gateway that only reads: the import's 400 is final (bad input), nothing retried.
    let gateway = VmAuth::start(
        &target.url,
        &[AuthUser::QueryOnly {
            username: "reader".into(),
            password: "reader-pass".into(),
        }],
    )
    .await?;
    let credentials = dir.path().join("basic");
    std::fs::write(&credentials, "reader:reader-pass\n")?;
    let mut args = import_args(
        &zip,
        &target,
        &["--basic-auth-file", &credentials.display().to_string()],
    );
    let url = args
        .iter()
        .position(|a| a == "--target-url")
        .context("--target-url")?
        + 1;
    args[url] = gateway.url.clone();
    args.push("--no-trim".into());
    let refused = vctp(&args, &[]).await?.expect(2)?;
    ensure_says(&refused.stderr, "missing route")?;
    ensure!(!refused.stderr.contains("retry"), "{}", refused.stderr);

    // A target keeping one day drops what is older; without trimming, the verification
    // names the series that did not arrive whole.
    let day = Node::start(NodeOptions {
        retention: Some("1d".into()),
        ..NodeOptions::default()
    })
    .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let shift = (now - 26 * 3_600_000) - seed.start_ms;
    let failed = vctp(
        &import_args(&zip, &day, &["--shift-ms", &shift.to_string(), "--no-trim"]),
        &[],
    )
    .await?
    .expect(1)?;
    ensure_says(&failed.stderr, "verification failed")?;
    ensure_says(&failed.stderr, "samples sent")?;
    Ok(())
}

/// An import target that keeps one sample per (series, timestamp), as a resumed or retried
/// import relies on.
async fn dedup_target() -> Result<Node> {
    Node::start(NodeOptions {
        dedup: true,
        ..NodeOptions::default()
    })
    .await
}

/// Fails with the whole text when `needle` is not in it.
fn ensure_says(text: &str, needle: &str) -> Result<()> {
    ensure!(text.contains(needle), "expected {needle:?} in:\n{text}");
    Ok(())
}
