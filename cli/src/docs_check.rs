//! The documentation cites only what exists: every repository path written in backticks in
//! `README.md` and `docs/*.md` (brace lists and `*` expanded), every relative link, and every
//! `fleetctl …` command (its subcommands, as this binary parses them). A moved file or a renamed
//! command fails here, in the same diff.

use clap::CommandFactory;
use std::path::{Path, PathBuf};

/// The top-level entries a cited repository path starts with (a topic such as `P/<serial>/…` does not).
const ROOTS: &[&str] = &[
    "shared/",
    "functions/",
    "cli/",
    "gateway/",
    "tests/",
    "scripts/",
    "infra/",
    "fuzz/",
    "docs/",
    ".ci/",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn documents() -> Vec<(String, String)> {
    let root = repo();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let name = p
                .strip_prefix(&root)
                .expect("in repo")
                .display()
                .to_string();
            (name, std::fs::read_to_string(&p).expect("readable"))
        })
        .collect()
}

/// The lines inside fenced code blocks.
fn fenced_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if fenced {
            lines.push(line);
        }
    }
    lines
}

/// The spans between backticks, outside fenced code blocks.
fn code_spans(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        spans.extend(line.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    spans
}

/// `a/{b,c}.rs` → `a/b.rs`, `a/c.rs`.
fn expand(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .flat_map(|alt| expand(&format!("{}{alt}{}", &path[..open], &path[close + 1..])))
            .collect(),
        _ => vec![path.to_owned()],
    }
}

/// Whether `path` (relative, `*` allowed in one component) names something in the repository.
fn exists(root: &Path, path: &str) -> bool {
    let Some(star) = path.find('*') else {
        return root.join(path).exists();
    };
    let dir_end = path[..star].rfind('/').map_or(0, |i| i + 1);
    let rest_start = path[star..].find('/').map(|i| star + i);
    let (prefix, suffix) = (
        &path[dir_end..star],
        &path[star + 1..rest_start.unwrap_or(path.len())],
    );
    let Ok(entries) = std::fs::read_dir(root.join(&path[..dir_end])) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let name = e.file_name().to_string_lossy().to_string();
        name.starts_with(prefix)
            && name.ends_with(suffix)
            && rest_start
                .is_none_or(|r| exists(root, &format!("{}{name}{}", &path[..dir_end], &path[r..])))
    })
}

fn cited_paths(text: &str) -> Vec<String> {
    let mut paths: Vec<String> = code_spans(text)
        .into_iter()
        .filter(|s| ROOTS.iter().any(|r| s.starts_with(r)) && !s.contains(['<', ' ', '$']))
        .flat_map(|s| expand(&s))
        .collect();
    // Relative markdown links: `](docs/x.md)`.
    for part in text.split("](").skip(1) {
        if let Some(end) = part.find(')') {
            let target = &part[..end];
            if !target.contains("://") && !target.starts_with('#') {
                paths.push(target.split('#').next().unwrap_or(target).to_owned());
            }
        }
    }
    paths
}

/// `fleetctl a b <x> --y` → `["a", "b"]`: the words that name subcommands.
fn cited_commands(text: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let spans = code_spans(text);
    for line in fenced_lines(text)
        .into_iter()
        .chain(spans.iter().map(String::as_str))
    {
        let mut rest = line;
        while let Some(at) = rest.find("fleetctl ") {
            let words: Vec<String> = rest[at + "fleetctl ".len()..]
                .split_whitespace()
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                .take_while(|w| !w.starts_with('-'))
                .map(str::to_owned)
                .collect();
            if !words.is_empty() {
                commands.push(words);
            }
            rest = &rest[at + 1..];
        }
    }
    commands
}

/// What the build or a run creates (`.gitignore`'s entries): cited as where output lands.
fn generated(root: &Path, path: &str) -> bool {
    std::fs::read_to_string(root.join(".gitignore"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_start_matches('/').trim_end_matches('/'))
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.contains('*'))
        .any(|ignored| path.trim_end_matches('/').starts_with(ignored))
}

#[test]
fn every_cited_path_exists() {
    let root = repo();
    let mut missing = Vec::new();
    for (doc, text) in documents() {
        let base = Path::new(&doc)
            .parent()
            .unwrap_or(Path::new(""))
            .to_path_buf();
        for path in cited_paths(&text) {
            let path = path.trim_end_matches([',', '.', ';', ':']);
            let relative = base.join(path);
            if !exists(&root, path)
                && !exists(&root, &relative.display().to_string())
                && !generated(&root, path)
            {
                missing.push(format!("{doc}: {path}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "cited but missing:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_cited_fleetctl_command_parses() {
    let cli = crate::Cli::command();
    let mut unknown = Vec::new();
    for (doc, text) in documents() {
        for words in cited_commands(&text) {
            let mut cmd = &cli;
            // A word under a command with subcommands must be one of them; under a leaf it is an
            // argument (a serial).
            for w in &words {
                match cmd.find_subcommand(w) {
                    Some(sub) => cmd = sub,
                    None if cmd.has_subcommands() => {
                        unknown.push(format!("{doc}: fleetctl {}", words.join(" ")));
                        break;
                    }
                    None => break,
                }
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "documented but not a command:\n{}",
        unknown.join("\n")
    );
}

#[test]
fn the_readme_stays_short() {
    let (_, readme) = &documents()[0];
    assert!(readme.lines().count() <= 150, "README.md over 150 lines");
}
