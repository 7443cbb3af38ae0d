//! The house's layers, read from the source: no import cycle between any two files of
//! `src/`, and between top-level modules every arrow points down the order docs/development.md's
//! architecture section draws. An import is a `use` or a `crate::`/`super::` path in code
//! (tests and comments aside), resolved through `pub use` re-exports to the file that
//! defines the item.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regex::Regex;

/// The top-level modules, lowest first: each may use only those before it.
const LAYERS: &[&[&str]] = &[
    &["infra"],
    &["evidence", "validate", "browser", "checklist"],
    &["payer"],
    &["app", "features", "sandbox"],
    &["config"],
    &["summary"],
    &["report"],
    &["run"],
    &["steps"],
    &["cli"],
];

type Module = Vec<String>;

struct Source {
    files: BTreeMap<Module, String>,
}

impl Source {
    fn read() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = BTreeMap::new();
        for entry in walkdir::WalkDir::new(&root) {
            let entry = entry.expect("src/ is readable");
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).expect("under src/");
            if relative == Path::new("main.rs") {
                continue;
            }
            let mut module: Module = relative
                .with_extension("")
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                module.pop();
            }
            let text = std::fs::read_to_string(path).expect("a source file");
            files.insert(module, code_of(&text));
        }
        Self { files }
    }

    /// The file (module) that defines what `path` names, through re-exports.
    fn resolve(
        &self,
        path: &[String],
        reexports: &BTreeMap<Module, BTreeMap<String, Module>>,
        depth: usize,
    ) -> Option<Module> {
        for k in (0..=path.len()).rev() {
            let module = path[..k].to_vec();
            if !self.files.contains_key(&module) {
                continue;
            }
            if let Some(name) = path.get(k)
                && depth < 10
                && let Some(target) = reexports.get(&module).and_then(|r| r.get(name))
                && target.as_slice() != path
            {
                let mut next = target.clone();
                next.extend_from_slice(&path[k + 1..]);
                return self.resolve(&next, reexports, depth + 1);
            }
            return Some(module);
        }
        None
    }
}

/// The code of a file: without its unit tests (`#[cfg(test)] mod tests` and what follows)
/// and its comments.
fn code_of(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or_default();
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path a `use` tree names: `a::{b, c::{d}}` is `a::b` and `a::c::d`.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = tree.find('{') else {
        return vec![
            tree.split(" as ")
                .next()
                .unwrap_or_default()
                .replace(' ', ""),
        ];
    };
    let prefix = tree[..open].replace(' ', "");
    let close = tree
        .rfind('}')
        .filter(|close| *close > open)
        .unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let mut parts = Vec::new();
    let (mut depth, mut current) = (0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .flat_map(expand)
        .map(|p| format!("{prefix}{p}"))
        .collect()
}

/// `path` as written in `module`, made absolute; `None` for other crates.
fn absolute(module: &Module, path: &str, files: &BTreeMap<Module, String>) -> Option<Module> {
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (mut base, mut rest) = (module.clone(), segments.as_slice());
    match rest.first().copied() {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first() == Some(&"super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        Some(first) => {
            let mut child = base.clone();
            child.push(first.to_owned());
            if !files.contains_key(&child) {
                return None;
            }
        }
        None => return None,
    }
    base.extend(rest.iter().map(|s| (*s).to_owned()));
    Some(base)
}

/// Every file's imports, resolved to the files that define them.
fn imports() -> BTreeMap<Module, BTreeSet<Module>> {
    let source = Source::read();
    let use_item = Regex::new(r"(?m)^\s*(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);").expect("a regex");
    let inline = Regex::new(r"(?:^|[^\w:])((?:crate|super)(?:::\w+)+)").expect("a regex");
    let mut paths: BTreeMap<Module, Vec<Module>> = BTreeMap::new();
    let mut reexports: BTreeMap<Module, BTreeMap<String, Module>> = BTreeMap::new();
    for (module, code) in &source.files {
        let mut found = Vec::new();
        for item in use_item.captures_iter(code) {
            for path in expand(&item[2]) {
                let Some(absolute) = absolute(module, &path, &source.files) else {
                    continue;
                };
                if item.get(1).is_some()
                    && let Some(name) = absolute.last().filter(|n| *n != "*")
                {
                    reexports
                        .entry(module.clone())
                        .or_default()
                        .insert(name.clone(), absolute.clone());
                }
                found.push(absolute);
            }
        }
        // Paths in code, the `use` items already read.
        let code = use_item.replace_all(code, "");
        for path in inline.captures_iter(&code) {
            found.extend(absolute(module, &path[1], &source.files));
        }
        paths.insert(module.clone(), found);
    }
    paths
        .into_iter()
        .map(|(module, found)| {
            let targets = found
                .iter()
                .filter_map(|path| source.resolve(path, &reexports, 0))
                .filter(|target| *target != module)
                .collect();
            (module, targets)
        })
        .collect()
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.join("::")
    }
}

/// The strongly connected components with more than one file (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, v: &'a Module) {
        let n = state.index.len();
        state.index.insert(v, n);
        state.low.insert(v, n);
        state.stack.push(v);
        state.on_stack.insert(v);
        for w in state.edges.get(v).into_iter().flatten() {
            let Some((w, _)) = state.edges.get_key_value(w) else {
                continue;
            };
            if !state.index.contains_key(w) {
                visit(state, w);
                let low = state.low[v].min(state.low[w]);
                state.low.insert(v, low);
            } else if state.on_stack.contains(w) {
                let low = state.low[v].min(state.index[w]);
                state.low.insert(v, low);
            }
        }
        if state.low[v] == state.index[v] {
            let mut component = Vec::new();
            while let Some(w) = state.stack.pop() {
                state.on_stack.remove(w);
                component.push(name(w));
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.found
}

#[test]
fn no_file_imports_in_a_cycle() {
    let found = cycles(&imports());
    assert!(found.is_empty(), "import cycles in src/: {found:#?}");
}

#[test]
fn every_arrow_between_top_level_modules_points_down() {
    let rank = |module: &Module| {
        let top = module.first()?;
        LAYERS
            .iter()
            .position(|layer| layer.contains(&top.as_str()))
    };
    let mut up = Vec::new();
    for (from, targets) in imports() {
        if from.is_empty() {
            continue;
        }
        let Some(from_rank) = rank(&from) else {
            up.push(format!("{} is in no layer: add it to LAYERS", name(&from)));
            continue;
        };
        for to in targets {
            if to.is_empty() || to.first() == from.first() {
                continue;
            }
            match rank(&to) {
                Some(to_rank) if to_rank < from_rank => {}
                _ => up.push(format!("{} -> {}", name(&from), name(&to))),
            }
        }
    }
    assert!(up.is_empty(), "imports that point up or sideways: {up:#?}");
}

/// The longest a function may be: one that does not fit on a screen or two does more than
/// one thing.
const LONGEST_FUNCTION: usize = 119;

/// Every function of `src/` longer than [`LONGEST_FUNCTION`] lines, with where it starts.
fn long_functions() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let header =
        Regex::new(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?fn\s+(\w+)").expect("a regex");
    let mut long = Vec::new();
    for entry in walkdir::WalkDir::new(&root) {
        let entry = entry.expect("src/ is readable");
        if entry.path().extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path()).expect("a source file");
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            let Some(name) = header.captures(line).map(|c| c[5].to_owned()) else {
                continue;
            };
            if let Some(length) = body_length(&lines[at..])
                && length > LONGEST_FUNCTION
            {
                long.push(format!(
                    "{}:{} {name}: {length} lines",
                    entry
                        .path()
                        .strip_prefix(&root)
                        .unwrap_or(entry.path())
                        .display(),
                    at + 1
                ));
            }
        }
    }
    long
}

/// How many lines a function takes, from its header to its closing brace (`None` for a
/// declaration without a body). Strings, characters and comments are skipped.
fn body_length(lines: &[&str]) -> Option<usize> {
    let (mut depth, mut opened) = (0usize, false);
    for (at, line) in lines.iter().enumerate() {
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '/' if chars.peek() == Some(&'/') => break,
                '"' => {
                    while let Some(c) = chars.next() {
                        match c {
                            '\\' => {
                                chars.next();
                            }
                            '"' => break,
                            _ => {}
                        }
                    }
                }
                '\'' => {
                    // A character literal ('x', '\n', '{'), not a lifetime.
                    let rest: String = chars.clone().take(3).collect();
                    if rest.starts_with('\\') {
                        chars.next();
                        chars.next();
                        chars.next();
                    } else if rest.chars().nth(1) == Some('\'') {
                        chars.next();
                        chars.next();
                    }
                }
                ';' if !opened => return None,
                '{' => {
                    depth += 1;
                    opened = true;
                }
                '}' => {
                    depth = depth.saturating_sub(1);
                    if opened && depth == 0 {
                        return Some(at + 1);
                    }
                }
                _ => {}
            }
        }
    }
    None
}

#[test]
fn no_function_is_longer_than_a_screen_or_two() {
    let long = long_functions();
    assert!(
        long.is_empty(),
        "functions longer than {LONGEST_FUNCTION} lines: {long:#?}"
    );
}

#[test]
fn the_reader_sees_what_an_import_is() {
    assert_eq!(expand("a::{b, c::{d, e}}"), ["a::b", "a::c::d", "a::c::e"]);
    assert_eq!(
        code_of("use a; // use b;\n#[cfg(test)]\nmod tests { use c; }"),
        "use a; "
    );
    let files: BTreeMap<Module, String> = [(vec!["x".to_owned()], String::new())].into();
    assert_eq!(
        absolute(&vec!["y".to_owned(), "z".to_owned()], "super::w", &files),
        Some(vec!["y".to_owned(), "w".to_owned()])
    );
    assert_eq!(absolute(&vec![], "std::fs", &files), None);
    let mut edges = BTreeMap::new();
    edges.insert(vec!["a".to_owned()], BTreeSet::from([vec!["b".to_owned()]]));
    edges.insert(vec!["b".to_owned()], BTreeSet::from([vec!["a".to_owned()]]));
    assert_eq!(cycles(&edges), vec![vec!["a".to_owned(), "b".to_owned()]]);
    assert_eq!(
        body_length(&["fn f() {", "    let c = '{';", "    \"}\"", "}"]),
        Some(4)
    );
    assert_eq!(body_length(&["fn f(x: &'a str);"]), None);
}
