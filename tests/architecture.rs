//! The floors of ARCHITECTURE.md, held against the code: every `crate::…`, `super::…` and
//! `self::…` path in `src/` (outside `#[cfg(test)]` and comments) is resolved to the file it
//! names, and the test fails on an import that runs up a floor, on a driver calling what a
//! unit of work is made of, and on any circle of files importing each other.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, bottom up, by top-level module.
const FLOORS: &[(&str, &[&str])] = &[
    (
        "adapters",
        &["vsphere", "store", "objstore", "tls", "schedule", "signal"],
    ),
    (
        "domain",
        &[
            "aggregate",
            "cost",
            "inventory",
            "report",
            "export",
            "crd",
            "config",
            "credentials",
            "auth",
            "output",
            "synth",
            "telemetry",
        ],
    ),
    ("jobs", &["jobs"]),
    (
        "drivers",
        &[
            "cli",
            "commands",
            "standalone",
            "demo",
            "api",
            "operator",
            "bench",
            "sim",
        ],
    ),
];

/// Imports allowed against the floors: the database adapter knows the rows it stores.
const EXCEPTIONS: &[(&str, &str)] = &[("store", "aggregate"), ("store", "inventory")];

/// What units of work are made of: only `jobs/` (and the module defining each) may call them.
const COMPOSED_IN_JOBS: &[&str] = &[
    "aggregate_daily(",
    "aggregate_monthly(",
    "aggregate_daily_recorded(",
    "aggregate_monthly_recorded(",
    "capture_round(",
    "delete_hourly_before(",
    "delete_daily_before(",
    "record_report(",
    "daily_workbook(",
    "monthly_workbook(",
    "hourly_workbook(",
];

/// Drivers that may call those parts directly: the benchmarks time them one by one.
const MEASURES_PARTS: &[&str] = &["bench"];

struct Source {
    /// Module path: `src/jobs/report.rs` is `["jobs", "report"]`; `lib.rs` and `main.rs` are `[]`.
    module: Vec<String>,
    /// The text before `#[cfg(test)]`, without `//` comments.
    code: String,
}

fn sources() -> BTreeMap<PathBuf, Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&root).unwrap().with_extension("");
            let mut module: Vec<String> = relative
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code = text
                .lines()
                .map(|line| line.split("//").next().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n");
            (path, Source { module, code })
        })
        .collect()
}

/// Every path a file names that starts at `crate`, `super` or `self`, use-trees expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    fn expand(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        if let Some(open) = tree.find('{') {
            let head: Vec<String> = split_path(&tree[..open]);
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let mut depth = 0;
            let mut start = 0;
            let base: Vec<String> = prefix.iter().cloned().chain(head).collect();
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&base, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&base, &inner[start..], out);
        } else {
            let tail = tree.split(" as ").next().unwrap_or_default();
            let path: Vec<String> = prefix.iter().cloned().chain(split_path(tail)).collect();
            if !path.is_empty() {
                out.push(path);
            }
        }
    }
    fn split_path(text: &str) -> Vec<String> {
        text.split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &code[i..];
        let at_word = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let root = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|r| rest.starts_with(r));
        match root {
            Some(_) if at_word => {
                // A path runs while it has identifier, `::`, `{…}`, `,`, ` as ` and spaces
                // inside braces.
                let mut end = 0;
                let mut depth = 0i32;
                for (j, c) in rest.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth > 0 => depth -= 1,
                        c if c.is_alphanumeric() || c == '_' || c == ':' => {}
                        ',' | ' ' | '\n' | '\t' | '*' if depth > 0 => {}
                        _ => {
                            end = j;
                            break;
                        }
                    }
                    end = j + c.len_utf8();
                }
                let mut found = Vec::new();
                expand(&[], &rest[..end], &mut found);
                out.extend(found);
                i += end.max(1);
            }
            _ => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// The file a path names: the longest prefix of it that is a module of `src/`.
fn resolve(
    from: &[String],
    path: &[String],
    modules: &BTreeMap<Vec<String>, PathBuf>,
) -> Option<PathBuf> {
    let mut absolute: Vec<String> = Vec::new();
    let mut segments = path.iter().peekable();
    match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            segments.next();
        }
        Some("self") | Some("super") => {
            // A file's module is its own path (a `mod.rs` stands for its folder).
            absolute = from.to_vec();
            while let Some(s) = segments.peek() {
                match s.as_str() {
                    "self" => {}
                    "super" => {
                        absolute.pop();
                    }
                    _ => break,
                }
                segments.next();
            }
        }
        _ => return None,
    }
    absolute.extend(segments.cloned());
    (1..=absolute.len())
        .rev()
        .find_map(|n| modules.get(&absolute[..n]).cloned())
}

fn floor_of(module: &str) -> Option<(usize, &'static str)> {
    FLOORS
        .iter()
        .enumerate()
        .find(|(_, (_, members))| members.contains(&module))
        .map(|(i, (name, _))| (i, *name))
}

/// The file graph: each file and the files it imports.
fn graph() -> (
    BTreeMap<PathBuf, Source>,
    BTreeMap<PathBuf, BTreeSet<PathBuf>>,
) {
    let sources = sources();
    let modules: BTreeMap<Vec<String>, PathBuf> = sources
        .iter()
        .filter(|(_, s)| !s.module.is_empty())
        .map(|(path, s)| (s.module.clone(), path.clone()))
        .collect();
    let edges = sources
        .iter()
        .map(|(path, source)| {
            let targets = paths(&source.code)
                .iter()
                .filter_map(|p| resolve(&source.module, p, &modules))
                .filter(|target| target != path)
                .collect();
            (path.clone(), targets)
        })
        .collect();
    (sources, edges)
}

fn short(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn no_import_runs_up_a_floor() {
    let (sources, edges) = graph();
    let mut broken = Vec::new();
    for (from, targets) in &edges {
        let Some(from_top) = sources[from].module.first() else {
            continue; // lib.rs and main.rs stand above everything.
        };
        let (from_floor, from_name) = floor_of(from_top)
            .unwrap_or_else(|| panic!("{} is on no floor of ARCHITECTURE.md", short(from)));
        for target in targets {
            let to_top = &sources[target].module[0];
            let (to_floor, to_name) = floor_of(to_top).unwrap();
            let excepted = EXCEPTIONS.contains(&(from_top.as_str(), to_top.as_str()));
            if to_floor > from_floor && !excepted {
                broken.push(format!(
                    "{} ({from_name}) imports {} ({to_name})",
                    short(from),
                    short(target)
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports up a floor:\n{}",
        broken.join("\n")
    );
}

#[test]
fn only_jobs_composes_units_of_work() {
    let (sources, _) = graph();
    let mut broken = Vec::new();
    for (path, source) in &sources {
        let Some(top) = source.module.first() else {
            continue;
        };
        if floor_of(top).is_none_or(|(_, floor)| floor != "drivers")
            || MEASURES_PARTS.contains(&top.as_str())
        {
            continue;
        }
        for part in COMPOSED_IN_JOBS {
            if source.code.contains(part) {
                broken.push(format!("{} calls {part}…)", short(path)));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "drivers composing what jobs/ should:\n{}",
        broken.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let (_, edges) = graph();
    // Tarjan's strongly connected components; any with two or more files is a circle.
    struct State<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        circles: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a PathBuf) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in &s.edges[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(short(w));
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.circles.push(component);
            }
        }
    }
    let mut state = State {
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        circles: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    assert!(
        state.circles.is_empty(),
        "files importing each other: {:#?}",
        state.circles
    );
}

#[test]
fn the_checker_sees_imports_use_trees_and_relative_paths() {
    let found = paths(
        "use crate::jobs::{Stores, report::{self, Period}};\nuse super::super::x as y;\nlet a = crate::store::grain::Grain::Daily;",
    );
    let text: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        text,
        [
            "crate::jobs::Stores",
            "crate::jobs::report::self",
            "crate::jobs::report::Period",
            "super::super::x",
            "crate::store::grain::Grain::Daily",
        ]
    );
    let modules: BTreeMap<Vec<String>, PathBuf> = [
        (vec!["jobs".to_string()], PathBuf::from("jobs/mod.rs")),
        (
            vec!["jobs".to_string(), "report".to_string()],
            PathBuf::from("jobs/report.rs"),
        ),
    ]
    .into();
    let from = vec!["jobs".to_string(), "aggregate".to_string()];
    let target = |p: &str| {
        let path: Vec<String> = p.split("::").map(String::from).collect();
        resolve(&from, &path, &modules)
    };
    assert_eq!(target("super::report::run"), Some("jobs/report.rs".into()));
    assert_eq!(target("crate::jobs::Stores"), Some("jobs/mod.rs".into()));
    assert_eq!(target("crate::nowhere::X"), None);
}
