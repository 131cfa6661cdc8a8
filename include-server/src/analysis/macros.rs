//! The global macro table and the multi-valued macro evaluator for computed includes
//! (spec 5.6, 5.7; improved).
//!
//! Table: one per generation, shared by all requests; each symbol holds the *set* of every
//! definition seen in any parsed file or `-D` option (appended, never removed), plus a
//! "may be undefined" flag set by `#undef`/`-U`. A symbol's version (its definition count
//! plus the flag) only grows, so an evaluation that records the versions of the symbols it
//! looked up stays valid as long as those versions are unchanged.
//!
//! Evaluator: a token-based C preprocessor expander (Prosser's hide-set algorithm, as GCC
//! implements it: arguments pre-expanded in isolation, `#` stringizes the spelling, `##`
//! pastes and re-lexes, placemarkers for empty arguments, `__VA_ARGS__`, `__VA_OPT__`,
//! rescanning with the rest of the input) made multi-valued: at each macro use, every
//! definition in the table is a branch (and "left unexpanded" is one more branch when the
//! symbol may be undefined). The result is the set of every possible expansion; each
//! value that starts with a string literal or a `<`...`>` sequence is a header name.
//!
//! Pruning: along one expansion path a symbol keeps the definition it was first expanded
//! with (sound: definitions do not change within one directive), and definitions of
//! multiply-defined macros from different branches of one `#if` chain of one file are not
//! combined (one inclusion takes one branch; the assumption fails only for a file included
//! several times under different conditions that leaves two such macros from different
//! branches live at once); a value reached under several sets of such choices keeps only
//! their common part. At the top level a
//! value is dropped as soon as its first token shows it cannot be a header name. A symbol
//! with more than [`WIDEN_MIN_DEFS`] definitions that are all single numbers (iteration
//! counters) is first expanded to one opaque value; the pass is redone with all its
//! values only if that value is pasted, stringized or spelled into a header name.
//!
//! Two passes: the first expands every defined macro; the second also leaves `#undef`'d
//! symbols unexpanded. The second has a smaller bound ([`MAX_STEPS_UNDEFINED_PASS`]); when it hits it, the names of the
//! first stand and [`Evaluation::complete`] is false (counted by the caller): a header
//! spelled with the literal name of a macro that is undefined at that point could then be
//! missed.
//!
//! Bounds (never a blow-up): at most [`MAX_STEPS`] token steps and [`MAX_VALUES`] distinct
//! values per evaluation, and a recursion depth of [`MAX_DEPTH`]. Reaching one in the first
//! pass returns [`EvalError::Capped`]; the caller then uses a sound approximation of the
//! include (see `graph`) or fails the request (the client preprocesses locally, which is
//! always correct) rather than risk a missed header. [`evaluate_bounded`] takes smaller
//! step bounds for callers whose approximation is cheap.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use super::cputime::Budget;
use super::scan::Define;
use super::shard::ShardedMap;

/// Token steps allowed in one evaluation.
pub const MAX_STEPS: u64 = 40_000_000;
/// Token steps allowed in the second ("possibly undefined") pass.
pub const MAX_STEPS_UNDEFINED_PASS: u64 = 2_000_000;
/// Distinct values (also alternatives alive at once) allowed in one evaluation.
pub const MAX_VALUES: usize = 20_000;
/// Nesting depth of argument pre-expansion.
pub const MAX_DEPTH: usize = 400;
/// A symbol with more definitions than this, each a single number (an iteration
/// counter such as `BOOST_PP_ITERATION_1`, 257 definitions), is first expanded to one
/// opaque "some number" token; only if that token is pasted, stringized or spelled into
/// a header name is the evaluation redone with the symbol's every value.
pub const WIDEN_MIN_DEFS: usize = 8;

/// Symbol text.
pub type Sym = Arc<[u8]>;

/// A preprocessing token's class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Identifier.
    Ident,
    /// Preprocessing number.
    Number,
    /// String literal (with its quotes and any prefix kept in the text).
    Str,
    /// Character literal.
    Char,
    /// Punctuator or any other byte.
    Punct,
    /// The empty token standing for an empty argument next to `##`.
    Placemarker,
}

/// A preprocessing token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tok {
    /// Class.
    pub kind: Kind,
    /// Spelling.
    pub text: Sym,
    /// Whitespace precedes it.
    pub space: bool,
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

const PUNCT3: &[&[u8]] = &[b"...", b"<<=", b">>=", b"->*", b"<=>", b"%:%"];
const PUNCT2: &[&[u8]] = &[
    b"##", b"->", b"++", b"--", b"<<", b">>", b"<=", b">=", b"==", b"!=", b"&&", b"||", b"*=",
    b"/=", b"%=", b"+=", b"-=", b"&=", b"^=", b"|=", b"::", b".*", b"%:",
];

/// Splits text (already free of comments and splices) into tokens.
pub fn tokenize(s: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut space = false;
    while i < s.len() {
        let c = s[i];
        if c.is_ascii_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        let start = i;
        let kind;
        if c.is_ascii_digit() || (c == b'.' && s.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            kind = Kind::Number;
            i += 1;
            while i < s.len() {
                let d = s[i];
                let sign =
                    (d == b'+' || d == b'-') && matches!(s[i - 1], b'e' | b'E' | b'p' | b'P');
                if is_ident_byte(d) || d == b'.' || sign {
                    i += 1;
                } else if d == b'\'' && s.get(i + 1).is_some_and(|&n| is_ident_byte(n)) {
                    i += 2;
                } else {
                    break;
                }
            }
        } else if is_ident_byte(c) {
            kind = Kind::Ident;
            while i < s.len() && is_ident_byte(s[i]) {
                i += 1;
            }
        } else if c == b'"' || c == b'\'' {
            kind = if c == b'"' { Kind::Str } else { Kind::Char };
            i += 1;
            while i < s.len() && s[i] != c {
                if s[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(s.len());
        } else {
            kind = Kind::Punct;
            i += if PUNCT3.iter().any(|p| s[i..].starts_with(p)) {
                3
            } else if PUNCT2.iter().any(|p| s[i..].starts_with(p)) {
                2
            } else {
                1
            };
        }
        // A string or character literal glued to an encoding prefix is one token.
        if (kind == Kind::Str || kind == Kind::Char) && !space {
            if let Some(prev) = out.last_mut() {
                let prev: &mut Tok = prev;
                if prev.kind == Kind::Ident
                    && matches!(&*prev.text, b"u8" | b"u" | b"U" | b"L")
                    && prev_end_is(s, start, &prev.text)
                {
                    let mut t = prev.text.to_vec();
                    t.extend_from_slice(&s[start..i]);
                    prev.text = t.into();
                    prev.kind = kind;
                    continue;
                }
            }
        }
        out.push(Tok {
            kind,
            text: s[start..i].into(),
            space,
        });
        space = false;
    }
    out
}

fn prev_end_is(s: &[u8], start: usize, prev: &[u8]) -> bool {
    start >= prev.len() && &s[start - prev.len()..start] == prev
}

/// One definition of a macro.
///
/// The replacement list is kept as scanned and tokenized on first use: only the macros a
/// computed include reaches are ever expanded, while the table holds every definition
/// of every header scanned (thousands per translation unit). Two definitions are the
/// same when their parameters, replacement text and branch constraints are.
#[derive(Clone, Debug)]
pub struct MacroDef {
    /// Parameters of a function-like macro.
    pub params: Option<Vec<Sym>>,
    /// The last parameter is variadic.
    pub variadic: bool,
    /// The replacement list as scanned (comments removed, trimmed).
    text: Sym,
    /// Its tokens, made on first use.
    tokens: std::sync::OnceLock<Vec<Tok>>,
    /// The conditional branches the definition sits in: (chain key, branch index),
    /// sorted by key; empty for command-line and predefined macros.
    pub cond: Choices,
}

impl PartialEq for MacroDef {
    fn eq(&self, other: &Self) -> bool {
        self.same_text(other) && self.cond == other.cond
    }
}

impl Eq for MacroDef {}

impl std::hash::Hash for MacroDef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.params.hash(state);
        self.variadic.hash(state);
        self.text.hash(state);
        self.cond.hash(state);
    }
}

impl MacroDef {
    /// From a scanned `#define` of the file identified by `file_key` (0 for the command
    /// line and the compiler's predefined macros).
    pub fn from_define(d: &Define, file_key: u64) -> MacroDef {
        let mut cond: Vec<(u64, u32)> = d
            .cond
            .iter()
            .map(|&(chain, branch)| {
                use std::hash::BuildHasher;
                (
                    rustc_hash::FxBuildHasher.hash_one((file_key, chain)),
                    branch,
                )
            })
            .collect();
        cond.sort_unstable();
        MacroDef {
            params: d.params().map(|ps| ps.map(Sym::from).collect()),
            variadic: d.variadic(),
            text: Sym::from(d.body()),
            tokens: std::sync::OnceLock::new(),
            cond: Arc::new(cond),
        }
    }

    /// A definition with the given tokens.
    fn with_body(params: Option<Vec<Sym>>, variadic: bool, body: Vec<Tok>, cond: Choices) -> Self {
        MacroDef {
            params,
            variadic,
            text: Sym::from(spell(&body).as_slice()),
            tokens: std::sync::OnceLock::from(body),
            cond,
        }
    }

    /// The replacement list.
    pub fn body(&self) -> &[Tok] {
        self.tokens.get_or_init(|| tokenize(&self.text))
    }

    /// Same parameters and replacement text.
    fn same_text(&self, other: &MacroDef) -> bool {
        self.params == other.params && self.variadic == other.variadic && self.text == other.text
    }
}

/// Branch choices made along one expansion path: (conditional-chain key, branch), sorted.
/// Shared between threads inside the table, so it is an `Arc`.
pub type Choices = Arc<Vec<(u64, u32)>>;

/// The choices two sets agree on.
fn intersect(a: &Choices, b: &Choices) -> Choices {
    if a.is_empty() || b.is_empty() {
        return Arc::default();
    }
    if a == b {
        return a.clone();
    }
    Arc::new(a.iter().filter(|x| b.contains(x)).copied().collect())
}

/// Merges two choice sets; `None` when they pick different branches of one chain.
fn merge(a: &Choices, b: &Choices) -> Option<Choices> {
    if b.is_empty() {
        return Some(a.clone());
    }
    if a.is_empty() {
        return Some(b.clone());
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if a[i].1 != b[j].1 {
                    return None;
                }
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    Some(Arc::new(out))
}

/// Everything known about one symbol.
#[derive(Clone, Debug, Default)]
pub struct Symbol {
    /// Every distinct definition.
    pub defs: Vec<Arc<MacroDef>>,
    /// `#undef` or `-U` was seen: "not defined" is a possibility too.
    pub maybe_undefined: bool,
    /// Definitions whose branch constraint was dropped (same text seen elsewhere).
    pub loosened: u64,
}

impl Symbol {
    /// Grows whenever the symbol gains a definition, a looser one or the undefined
    /// possibility.
    pub fn version(&self) -> u64 {
        (self.defs.len() as u64 + self.loosened) * 2 + u64::from(self.maybe_undefined)
    }
}

/// The global macro table.
///
/// A scanned file's definitions are not entered when it is scanned: only computed
/// includes read the table, most code bases have none, and a C library's headers define
/// tens of thousands of macros, of which an evaluation reads a few hundred. They wait in
/// a queue of files; the first read after a file was queued sorts the queue by macro
/// name ([`MacroTable::get`], [`MacroTable::version`]), and a name's definitions are
/// entered when that name is first read. Every read sees every file scanned before it.
#[derive(Debug)]
pub struct MacroTable {
    map: ShardedMap<Sym, Arc<Symbol>>,
    /// Scanned files whose definitions are not sorted by name yet.
    files: std::sync::Mutex<Vec<PendingFile>>,
    /// Set while `files` holds some.
    files_pending: std::sync::atomic::AtomicBool,
    /// Held (write) by the thread sorting a batch of files: readers wait for it.
    sorting: std::sync::RwLock<()>,
    /// Definitions not entered yet, by the hash of the name, in shards.
    waiting: Vec<std::sync::Mutex<rustc_hash::FxHashMap<u64, Vec<Waiting>>>>,
    /// Grows (from 1) whenever a symbol's version may have grown: a file's definitions
    /// queued, a definition or an undefinition entered, the table cleared. A result
    /// whose dependencies were all current at epoch `e` is still current while the
    /// epoch is `e` ([`MacroTable::current`]).
    epoch: std::sync::atomic::AtomicU64,
}

/// The epoch at which a result's dependencies were last found current (0: never), kept
/// with the result so that a warm request checks one number instead of every symbol.
#[derive(Debug, Default)]
pub struct Checked(std::sync::atomic::AtomicU64);

/// A copy starts unchecked: the result it goes with may be changed (a merged summary
/// gains dependencies) before its first check.
impl Clone for Checked {
    fn clone(&self) -> Self {
        Checked::default()
    }
}

impl Default for MacroTable {
    fn default() -> Self {
        MacroTable {
            map: ShardedMap::default(),
            files: Default::default(),
            files_pending: Default::default(),
            sorting: Default::default(),
            waiting: (0..WAITING_SHARDS).map(|_| Default::default()).collect(),
            epoch: 1.into(),
        }
    }
}

const WAITING_SHARDS: usize = 32;

/// The definitions of one scanned file, not yet entered.
#[derive(Debug)]
struct PendingFile {
    defines: Vec<Define>,
    undefs: Vec<Vec<u8>>,
    file_key: u64,
}

/// One definition (with its file's key) or undefinition, not yet entered.
#[derive(Debug)]
enum Waiting {
    Define(Define, u64),
    Undef(Vec<u8>),
}

fn name_hash(name: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    rustc_hash::FxBuildHasher.hash_one(name)
}

impl MacroTable {
    /// Queues a scanned file's definitions and undefinitions (`file_key` tells the
    /// file's branch conditions from other files').
    pub fn define_later(&self, defines: Vec<Define>, undefs: Vec<Vec<u8>>, file_key: u64) {
        if defines.is_empty() && undefs.is_empty() {
            return;
        }
        let mut q = self.files.lock().unwrap_or_else(|e| e.into_inner());
        q.push(PendingFile {
            defines,
            undefs,
            file_key,
        });
        self.files_pending
            .store(true, std::sync::atomic::Ordering::Release);
        drop(q);
        self.advance();
    }

    /// A symbol's version may have grown.
    fn advance(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Whether every symbol of `deps` still has the version recorded with it. `checked`
    /// remembers the epoch of the last check that found them so: while nothing was
    /// defined since, the answer is yes without looking any symbol up. (Versions only
    /// grow, so a result once stale stays stale and is never marked.)
    pub fn current(&self, deps: &[(Sym, u64)], checked: &Checked) -> bool {
        use std::sync::atomic::Ordering::{AcqRel, Acquire};
        if deps.is_empty() {
            return true;
        }
        let epoch = self.epoch.load(Acquire);
        if checked.0.load(Acquire) == epoch {
            return true;
        }
        if !deps.iter().all(|(s, v)| self.version(s) == *v) {
            return false;
        }
        // Current as of `epoch` (read before the look-ups): a definition made during
        // them advanced the epoch past it, so the next call looks again.
        checked.0.fetch_max(epoch, AcqRel);
        true
    }

    fn waiting_for(
        &self,
        hash: u64,
    ) -> &std::sync::Mutex<rustc_hash::FxHashMap<u64, Vec<Waiting>>> {
        &self.waiting[(hash >> 40) as usize % WAITING_SHARDS]
    }

    /// Sorts the queued files' definitions by name (a prefetch helper with nothing else
    /// to do calls it too). The sorter takes a batch from the queue while it holds
    /// `sorting`, so a reader that finds the queue empty waits for a sort in progress:
    /// it then finds every definition by its name. Files scanned meanwhile queue up
    /// without waiting.
    pub fn sort_files(&self) {
        use std::sync::atomic::Ordering::{Acquire, Release};
        if !self.files_pending.load(Acquire) {
            drop(self.sorting.read().unwrap_or_else(|e| e.into_inner()));
            return;
        }
        let _sorting = self.sorting.write().unwrap_or_else(|e| e.into_inner());
        let batch = {
            let mut q = self.files.lock().unwrap_or_else(|e| e.into_inner());
            self.files_pending.store(false, Release);
            std::mem::take(&mut *q)
        };
        for f in batch {
            let ops = f
                .defines
                .into_iter()
                .map(|d| (name_hash(d.name()), Waiting::Define(d, f.file_key)))
                .chain(
                    f.undefs
                        .into_iter()
                        .map(|u| (name_hash(&u), Waiting::Undef(u))),
                );
            for (h, op) in ops {
                let mut w = self
                    .waiting_for(h)
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                w.entry(h).or_default().push(op);
            }
        }
    }

    /// Enters the waiting definitions of `name` (and of any name with the same hash).
    /// They are entered under their shard's lock: a reader of the name waits for them.
    fn enter_waiting(&self, name: &[u8]) {
        self.sort_files();
        let h = name_hash(name);
        let mut w = self
            .waiting_for(h)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(ops) = w.remove(&h) {
            for op in ops {
                match op {
                    Waiting::Define(d, file_key) => {
                        self.define(d.name(), MacroDef::from_define(&d, file_key));
                    }
                    Waiting::Undef(u) => self.undefine(&u),
                }
            }
        }
    }

    /// Adds a definition; returns whether it was new.
    pub fn define(&self, name: &[u8], def: MacroDef) -> bool {
        let def = Arc::new(def);
        let changed = self.map.update(Sym::from(name), |sym| {
            // One entry per distinct text; the same text in several places keeps only the
            // branch constraints common to all (fewer constraints: more possibilities).
            let same = sym.defs.iter().position(|d| d.same_text(&def));
            if let Some(k) = same {
                if intersect(&sym.defs[k].cond, &def.cond).len() == sym.defs[k].cond.len() {
                    return false;
                }
            }
            let mut s = (**sym).clone();
            match same {
                Some(k) => {
                    let common = intersect(&s.defs[k].cond, &def.cond);
                    let mut d = (*s.defs[k]).clone();
                    d.cond = common;
                    s.defs[k] = Arc::new(d);
                    s.loosened += 1;
                }
                None => s.defs.push(def),
            }
            *sym = Arc::new(s);
            true
        });
        if changed {
            self.advance();
        }
        changed
    }

    /// Records that `name` may be undefined.
    pub fn undefine(&self, name: &[u8]) {
        let changed = self.map.update(Sym::from(name), |sym| {
            if sym.maybe_undefined {
                return false;
            }
            let mut s = (**sym).clone();
            s.maybe_undefined = true;
            *sym = Arc::new(s);
            true
        });
        if changed {
            self.advance();
        }
    }

    /// The symbol's current state, if known.
    pub fn get(&self, name: &[u8]) -> Option<Arc<Symbol>> {
        self.enter_waiting(name);
        self.map.get(name)
    }

    /// The current version of `name` (0 when unknown).
    pub fn version(&self, name: &[u8]) -> u64 {
        self.get(name).map_or(0, |s| s.version())
    }

    /// Drops everything.
    pub fn clear(&self) {
        self.files.lock().unwrap_or_else(|e| e.into_inner()).clear();
        for w in &self.waiting {
            w.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        self.map.clear();
        self.advance();
    }
}

/// Why an evaluation stopped early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvalError {
    /// A bound on steps, values or depth was reached.
    Capped,
    /// The request's CPU budget ran out.
    Budget,
    /// Internal to [`evaluate`] (never returned by it): a widened symbol's value was
    /// pasted, stringized or spelled into a header name, so the pass restarts with that
    /// symbol expanded exactly.
    Widened(Sym),
}

/// A header name produced by evaluation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HeaderName {
    /// `"x"`.
    Quote(Vec<u8>),
    /// `<x>`.
    Angle(Vec<u8>),
}

/// The outcome of evaluating one expression.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    /// Every header name among the possible expansions (sorted).
    pub names: Vec<HeaderName>,
    /// Every symbol looked up, with its version at the time.
    pub deps: Vec<(Sym, u64)>,
    /// False when the pass that also leaves `#undef`'d symbols unexpanded hit its bound
    /// (the names then assume every macro used is defined).
    pub complete: bool,
    /// When `deps` were last found current.
    pub checked: Checked,
}

type HideSet = Rc<Vec<Sym>>;

/// A fast non-cryptographic hasher (FxHash) for the evaluator's own maps; keys are not
/// attacker-chosen in a way that matters (one request's CPU budget bounds the damage).
#[derive(Default, Clone, Copy)]
struct Fx(u64);

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Fx {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxBuild = std::hash::BuildHasherDefault<Fx>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;
type FxSet<K> = HashSet<K, FxBuild>;

/// A hide set compared by identity (cheap to hash; equal contents under different
/// identities only cost a memo miss).
#[derive(Clone, Debug)]
struct HsId(Option<HideSet>);

impl PartialEq for HsId {
    fn eq(&self, o: &HsId) -> bool {
        match (&self.0, &o.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}
impl Eq for HsId {}
impl std::hash::Hash for HsId {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_usize(self.0.as_ref().map_or(0, |r| Rc::as_ptr(r) as usize));
    }
}

#[derive(Clone, Debug)]
struct ETok {
    tok: Tok,
    hs: Option<HideSet>,
}

impl ETok {
    fn hidden(&self, name: &[u8]) -> bool {
        self.hs
            .as_ref()
            .is_some_and(|h| h.iter().any(|s| &**s == name))
    }
}

fn hs_union(a: &Option<HideSet>, b: &[Sym]) -> Option<HideSet> {
    let mut v: Vec<Sym> = a.as_ref().map(|h| (**h).clone()).unwrap_or_default();
    for s in b {
        if !v.contains(s) {
            v.push(s.clone());
        }
    }
    Some(Rc::new(v))
}

fn hs_intersect(a: &Option<HideSet>, b: &Option<HideSet>) -> Vec<Sym> {
    match (a, b) {
        (Some(a), Some(b)) => a.iter().filter(|s| b.contains(s)).cloned().collect(),
        _ => Vec::new(),
    }
}

/// One possible expansion and the branch choices it relies on.
type Value = (Vec<Tok>, Choices);

struct Evaluator<'a> {
    table: &'a MacroTable,
    budget: &'a mut Budget,
    steps: u64,
    seen: std::collections::HashMap<Sym, Arc<Symbol>>,
    depth: usize,
    memo: FxMap<Vec<(Tok, HsId)>, Rc<Vec<Value>>>,
    /// Whether a possibly-undefined symbol may also be left unexpanded.
    allow_undefined: bool,
    max_steps: u64,
    /// Symbols that must not be widened.
    exact: HashSet<Sym>,
}

/// Evaluates the computed-include expression `expr` against `table`.
///
/// Branch consistency: when a macro has several definitions, the chosen one's
/// conditional branches are remembered along that expansion path, and a definition of
/// another multiply-defined macro from a *different branch of the same `#if` chain of the
/// same file* is not combined with it (one preprocessing run takes one branch of a chain
/// at a time). This is what keeps Boost.Preprocessor's per-compiler variants from
/// multiplying. Macros with a single definition are never constrained.
pub fn evaluate(
    expr: &[u8],
    table: &MacroTable,
    budget: &mut Budget,
) -> Result<Evaluation, EvalFailure> {
    evaluate_with(expr, table, budget, true)
}

/// [`evaluate`], choosing whether the "possibly undefined" pass runs
/// (`--unsafe_no_unexpanded_functions` turns it off).
pub fn evaluate_with(
    expr: &[u8],
    table: &MacroTable,
    budget: &mut Budget,
    undefined_pass: bool,
) -> Result<Evaluation, EvalFailure> {
    evaluate_bounded(
        expr,
        table,
        budget,
        undefined_pass,
        MAX_STEPS,
        MAX_STEPS_UNDEFINED_PASS,
    )
}

/// [`evaluate_with`] with explicit step bounds for the first pass (`max_steps`) and the
/// "possibly undefined" pass (`max_steps_undefined`). A caller that has a cheap sound
/// substitute for a heavy evaluation passes small bounds and uses the substitute on
/// [`EvalError::Capped`] (or when [`Evaluation::complete`] is false).
pub fn evaluate_bounded(
    expr: &[u8],
    table: &MacroTable,
    budget: &mut Budget,
    undefined_pass: bool,
    max_steps: u64,
    max_steps_undefined: u64,
) -> Result<Evaluation, EvalFailure> {
    let input: Vec<ETok> = tokenize(expr)
        .into_iter()
        .map(|tok| ETok { tok, hs: None })
        .collect();
    let mut exact = HashSet::new();
    let mut seen = Seen::new();
    let deps_of = |seen: Seen| -> Vec<(Sym, u64)> {
        let mut deps: Vec<(Sym, u64)> = seen.into_iter().map(|(k, s)| (k, s.version())).collect();
        deps.sort();
        deps
    };
    // Pass 1: every macro that has definitions is expanded by one of them.
    let mut names = match run_pass(
        table, budget, &input, false, max_steps, &mut exact, &mut seen,
    ) {
        Ok(n) => n,
        Err(error) => {
            return Err(EvalFailure {
                error,
                deps: deps_of(seen),
            })
        }
    };
    let mut complete = true;
    // Pass 2: a symbol that was `#undef`'d somewhere may also be undefined here. This
    // pass has a smaller bound; when it is exceeded, pass 1's names stand alone.
    let needs_pass2 = undefined_pass
        && seen
            .values()
            .any(|s| s.maybe_undefined && !s.defs.is_empty());
    if needs_pass2 {
        match run_pass(
            table,
            budget,
            &input,
            true,
            max_steps_undefined,
            &mut exact,
            &mut seen,
        ) {
            Ok(n2) => names.extend(n2),
            Err(EvalError::Capped) => complete = false,
            Err(error) => {
                return Err(EvalFailure {
                    error,
                    deps: deps_of(seen),
                })
            }
        }
    }
    let mut names: Vec<HeaderName> = names.into_iter().collect();
    names.sort();
    Ok(Evaluation {
        names,
        deps: deps_of(seen),
        complete,
        checked: Checked::default(),
    })
}

/// A failed evaluation: why, and the symbols it had looked up (with their versions) so a
/// caller can remember the failure until one of them changes.
#[derive(Debug, Clone)]
pub struct EvalFailure {
    /// Why.
    pub error: EvalError,
    /// Symbols looked up so far.
    pub deps: Vec<(Sym, u64)>,
}

type Seen = std::collections::HashMap<Sym, Arc<Symbol>>;

/// One evaluation pass, restarted with fewer widened symbols until no widened value
/// matters.
fn run_pass(
    table: &MacroTable,
    budget: &mut Budget,
    input: &[ETok],
    allow_undefined: bool,
    max_steps: u64,
    exact: &mut HashSet<Sym>,
    seen_all: &mut Seen,
) -> Result<HashSet<HeaderName>, EvalError> {
    loop {
        let mut ev = Evaluator {
            table,
            budget: &mut *budget,
            steps: 0,
            seen: Default::default(),
            depth: 0,
            memo: Default::default(),
            allow_undefined,
            max_steps,
            exact: exact.clone(),
        };
        let r = ev.expand(input.to_vec(), true).and_then(|values| {
            let mut names = HashSet::new();
            for (v, _) in values.iter() {
                if let Some(n) = header_name(v) {
                    if let HeaderName::Angle(_) = n {
                        let close = v.iter().position(|t| &*t.text == b">").unwrap_or(0);
                        if let Some(w) = v[..close].iter().find_map(wild_symbol) {
                            return Err(EvalError::Widened(w));
                        }
                    }
                    names.insert(n);
                }
            }
            Ok(names)
        });
        seen_all.extend(ev.seen);
        match r {
            Ok(names) => return Ok(names),
            Err(EvalError::Widened(sym)) => {
                if !exact.insert(sym) || exact.len() > 64 {
                    return Err(EvalError::Capped);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The symbol a widened token stands for.
fn wild_symbol(t: &Tok) -> Option<Sym> {
    (t.text.first() == Some(&0)).then(|| Sym::from(&t.text[1..]))
}

/// Whether every definition of `sym` is a single number and there are many.
fn widenable(sym: &Symbol) -> bool {
    sym.defs.len() > WIDEN_MIN_DEFS
        && sym
            .defs
            .iter()
            .all(|d| d.params.is_none() && d.body().len() == 1 && d.body()[0].kind == Kind::Number)
}

/// The spelling of a token sequence, one space where whitespace was.
fn spell(toks: &[Tok]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.kind == Kind::Placemarker {
            continue;
        }
        if i > 0 && t.space && !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(&t.text);
    }
    out
}

/// The header name an expansion designates, as GCC reads `#include <tokens>`.
pub fn header_name(v: &[Tok]) -> Option<HeaderName> {
    let first = v.first()?;
    if first.kind == Kind::Str && first.text.first() == Some(&b'"') && first.text.len() >= 2 {
        let name = first.text[1..first.text.len() - 1].to_vec();
        return (!name.is_empty()).then_some(HeaderName::Quote(name));
    }
    if first.kind == Kind::Punct && &*first.text == b"<" {
        let close = v.iter().position(|t| &*t.text == b">")?;
        let mut name = spell(&v[1..close]);
        if v.get(1).is_some_and(|t| t.space) && close > 1 {
            name.insert(0, b' ');
        }
        return (!name.is_empty()).then_some(HeaderName::Angle(name));
    }
    None
}

/// A partial expansion: tokens already output, the input left (reversed: the next
/// token is last) and the branch choices made so far.
struct State {
    out: Vec<ETok>,
    rest: Vec<ETok>,
    choices: Choices,
}

type StateKey = (Vec<Tok>, Vec<Tok>, Choices);

impl Evaluator<'_> {
    fn step(&mut self, n: u64) -> Result<(), EvalError> {
        self.steps += n;
        if self.steps > self.max_steps {
            return Err(EvalError::Capped);
        }
        if self.budget.tick() {
            return Err(EvalError::Budget);
        }
        Ok(())
    }

    fn symbol(&mut self, name: &Sym) -> Arc<Symbol> {
        if let Some(s) = self.seen.get(name) {
            return s.clone();
        }
        let s = self.table.get(name).unwrap_or_default();
        self.seen.insert(name.clone(), s.clone());
        s
    }

    /// Every full expansion of `input` (deduplicated). At the top level (`top`), only
    /// values that can still be a header name are followed: a value is complete once its
    /// first token is a string literal, or a `<` with a `>` after it, and dropped once its
    /// first token is anything else. Nested expansions (macro arguments) are memoized by
    /// their input within the evaluation.
    fn expand(&mut self, input: Vec<ETok>, top: bool) -> Result<Rc<Vec<Value>>, EvalError> {
        let key: Option<Vec<(Tok, HsId)>> = (!top).then(|| {
            input
                .iter()
                .map(|e| (e.tok.clone(), HsId(e.hs.clone())))
                .collect()
        });
        if let Some(k) = &key {
            if let Some(r) = self.memo.get(k).cloned() {
                self.step(1)?;
                return Ok(r);
            }
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(EvalError::Capped);
        }
        let r = self.expand_inner(input, top);
        self.depth -= 1;
        let r = Rc::new(r?);
        if let Some(k) = key {
            self.memo.insert(k, r.clone());
        }
        Ok(r)
    }

    fn expand_inner(&mut self, mut input: Vec<ETok>, top: bool) -> Result<Vec<Value>, EvalError> {
        input.reverse();
        let mut results: Vec<Value> = Vec::new();
        // Values are deduplicated by tokens; a value reached under several choice sets
        // keeps only what they have in common (sound: fewer constraints).
        let mut seen_results: FxMap<Vec<Tok>, usize> = FxMap::default();
        let mut seen_states: FxSet<StateKey> = FxSet::default();
        let mut work = vec![State {
            out: Vec::new(),
            rest: input,
            choices: Arc::default(),
        }];
        while let Some(mut st) = work.pop() {
            self.step(1)?;
            if top && !st.out.is_empty() {
                let first = &st.out[0].tok;
                let done = if first.kind == Kind::Str && first.text.first() == Some(&b'"') {
                    true
                } else if first.kind == Kind::Punct && &*first.text == b"<" {
                    st.out.iter().any(|e| &*e.tok.text == b">")
                } else {
                    continue; // Can no longer be a header name.
                };
                if done {
                    let v: Vec<Tok> = st.out.into_iter().map(|e| e.tok).collect();
                    add_value(&mut results, &mut seen_results, v, Arc::default())?;
                    continue;
                }
            }
            let Some(t) = st.rest.pop() else {
                let v: Vec<Tok> = st
                    .out
                    .into_iter()
                    .map(|e| e.tok)
                    .filter(|t| t.kind != Kind::Placemarker)
                    .collect();
                add_value(&mut results, &mut seen_results, v, st.choices)?;
                continue;
            };
            if t.tok.kind != Kind::Ident || t.hidden(&t.tok.text) {
                st.out.push(t);
                work.push(st);
                continue;
            }
            let name = t.tok.text.clone();
            let sym = self.symbol(&name);
            if sym.defs.is_empty() {
                st.out.push(t);
                work.push(st);
                continue;
            }
            if widenable(&sym) && !self.exact.contains(&name) {
                let mut text = vec![0u8];
                text.extend_from_slice(&name);
                let wild = Tok {
                    kind: Kind::Number,
                    text: text.into(),
                    space: t.tok.space,
                };
                st.out.push(ETok {
                    tok: wild,
                    hs: t.hs.clone(),
                });
                if sym.maybe_undefined && self.allow_undefined {
                    let mut s2 = State {
                        out: st.out.clone(),
                        rest: st.rest.clone(),
                        choices: st.choices.clone(),
                    };
                    s2.out.pop();
                    s2.out.push(t);
                    work.push(s2);
                }
                work.push(st);
                continue;
            }
            // Branches: each definition, plus "not a macro here". A symbol with a choice
            // (several definitions, or possibly undefined) takes the same one everywhere
            // along a path: its definition cannot change within one directive.
            let constrained = sym.defs.len() > 1 || (sym.maybe_undefined && self.allow_undefined);
            let skey = symbol_key(&name);
            // Each branch: the replacement and how much of the rest it keeps.
            let mut pending: Vec<(Vec<ETok>, usize, Choices)> = Vec::new();
            let mut keep_unexpanded = false;
            let mut unexpanded_choices = st.choices.clone();
            if sym.maybe_undefined && self.allow_undefined {
                if let Some(c) = merge(&st.choices, &Arc::new(vec![(skey, u32::MAX)])) {
                    keep_unexpanded = true;
                    unexpanded_choices = c;
                }
            }
            for (di, def) in sym.defs.iter().enumerate() {
                let choices = if constrained {
                    let own = Arc::new(vec![(skey, di as u32)]);
                    let with_branch = if sym.defs.len() > 1 {
                        merge(&st.choices, &def.cond)
                    } else {
                        Some(st.choices.clone())
                    };
                    match with_branch.and_then(|c| merge(&c, &own)) {
                        Some(c) => c,
                        None => continue,
                    }
                } else {
                    st.choices.clone()
                };
                match &def.params {
                    None => {
                        let hs = hs_union(&t.hs, std::slice::from_ref(&name));
                        for (b, c) in self.subst(def, &[], &hs, &choices)? {
                            pending.push((b, st.rest.len(), c));
                        }
                    }
                    Some(params) => {
                        let Some((args, close_hs, consumed)) = collect_args(&st.rest) else {
                            keep_unexpanded = true;
                            continue;
                        };
                        if !arity_ok(params.len(), def.variadic, &args) {
                            keep_unexpanded = true;
                            continue;
                        }
                        let mut hs_v = hs_intersect(&t.hs, &close_hs);
                        if !hs_v.contains(&name) {
                            hs_v.push(name.clone());
                        }
                        let hs = Some(Rc::new(hs_v));
                        self.step(consumed as u64)?;
                        let base_len = st.rest.len() - consumed;
                        for (b, c) in self.subst(def, &args, &hs, &choices)? {
                            pending.push((b, base_len, c));
                        }
                    }
                }
            }
            if pending.len() + usize::from(keep_unexpanded) == 1 {
                // One way on: reuse the state without copying or deduplicating it.
                if let Some((b, keep, c)) = pending.pop() {
                    st.rest.truncate(keep);
                    st.rest.extend(b.into_iter().rev());
                    st.choices = c;
                } else {
                    st.out.push(t);
                    st.choices = unexpanded_choices;
                }
                work.push(st);
                continue;
            }
            let mut branches: Vec<State> = pending
                .into_iter()
                .map(|(b, keep, c)| {
                    let mut rest = st.rest[..keep].to_vec();
                    rest.extend(b.into_iter().rev());
                    State {
                        out: st.out.clone(),
                        rest,
                        choices: c,
                    }
                })
                .collect();
            if keep_unexpanded {
                let mut s2 = State {
                    out: st.out.clone(),
                    rest: st.rest.clone(),
                    choices: unexpanded_choices,
                };
                s2.out.push(t);
                branches.push(s2);
            }
            for b in branches {
                let key = (
                    b.out.iter().map(|e| e.tok.clone()).collect::<Vec<_>>(),
                    b.rest.iter().map(|e| e.tok.clone()).collect::<Vec<_>>(),
                    b.choices.clone(),
                );
                if seen_states.len() >= MAX_VALUES * 4 {
                    return Err(EvalError::Capped);
                }
                if seen_states.insert(key) {
                    work.push(b);
                }
            }
            if work.len() > MAX_VALUES {
                return Err(EvalError::Capped);
            }
        }
        Ok(results)
    }

    /// The replacement list of `def` with `args` substituted (every compatible
    /// combination of the arguments' expansions), hide set `hs` added, each with the
    /// branch choices it needs on top of `base`.
    fn subst(
        &mut self,
        def: &MacroDef,
        args: &[Vec<ETok>],
        hs: &Option<HideSet>,
        base: &Choices,
    ) -> Result<Vec<(Vec<ETok>, Choices)>, EvalError> {
        let params: &[Sym] = def.params.as_deref().unwrap_or(&[]);
        let body = def.body();
        self.step(body.len() as u64)?;
        let param_index = |t: &Tok| -> Option<usize> {
            if t.kind != Kind::Ident {
                return None;
            }
            params.iter().position(|p| **p == *t.text)
        };
        // Which parameters need their fully expanded form.
        let mut needs_expansion = vec![false; params.len()];
        for (k, t) in body.iter().enumerate() {
            if let Some(i) = param_index(t) {
                let after_hash = k > 0
                    && matches!(&*body[k - 1].text, b"#" | b"##" | b"%:" | b"%:%:")
                    && def.params.is_some();
                let before_paste = body.get(k + 1).is_some_and(|n| &*n.text == b"##");
                if !after_hash && !before_paste {
                    needs_expansion[i] = true;
                }
            }
        }
        let mut expansions: Vec<Rc<Vec<Value>>> = Vec::with_capacity(params.len());
        for (i, need) in needs_expansion.iter().enumerate() {
            if *need {
                let arg = args.get(i).cloned().unwrap_or_default();
                expansions.push(self.expand(arg, false)?);
            } else {
                expansions.push(Rc::new(vec![(Vec::new(), Arc::default())]));
            }
        }
        let combos = self.combinations(&expansions, base)?;
        let va_nonempty = def.variadic && args.last().is_some_and(|a| !a.is_empty());
        let mut out_all = Vec::with_capacity(combos.len());
        for (choice, chosen) in combos {
            self.step(body.len() as u64)?;
            let mut os: Vec<ETok> = Vec::new();
            let mut k = 0;
            let mut paste_next = false;
            while k < body.len() {
                let t = &body[k];
                let is_hash = def.params.is_some() && matches!(&*t.text, b"#" | b"%:");
                let is_paste = matches!(&*t.text, b"##" | b"%:%:") && t.kind == Kind::Punct;
                if is_paste && k > 0 && k + 1 < body.len() {
                    paste_next = true;
                    k += 1;
                    continue;
                }
                if def.variadic && &*t.text == b"__VA_OPT__" {
                    if let Some(end) = group_end(body, k + 1) {
                        if !va_nonempty {
                            k = end + 1;
                            if paste_next {
                                os.push(placemarker());
                            }
                            continue;
                        }
                        // Keep the inside: drop `__VA_OPT__ (` here and `)` below.
                        let mut inner = body[..k].to_vec();
                        inner.extend_from_slice(&body[k + 2..end]);
                        inner.extend_from_slice(&body[end + 1..]);
                        let d2 =
                            MacroDef::with_body(def.params.clone(), false, inner, def.cond.clone());
                        return self.subst(&d2, args, hs, base);
                    }
                }
                let piece: Vec<ETok> = if is_hash && k + 1 < body.len() {
                    if let Some(i) = param_index(&body[k + 1]) {
                        let arg = args.get(i).map(Vec::as_slice).unwrap_or(&[]);
                        k += 2;
                        let mut s = stringize(arg)?;
                        s.space = t.space;
                        vec![ETok { tok: s, hs: None }]
                    } else {
                        k += 1;
                        vec![ETok {
                            tok: t.clone(),
                            hs: None,
                        }]
                    }
                } else if let Some(i) = param_index(t) {
                    k += 1;
                    let raw = paste_next || body.get(k).is_some_and(|n| &*n.text == b"##");
                    let mut v: Vec<ETok> = if raw {
                        args.get(i).cloned().unwrap_or_default()
                    } else {
                        // Hide sets of pre-expanded arguments are not carried through
                        // the multi-valued expansion; rescanning may expand a name CPP
                        // would have painted blue, which only adds values.
                        expansions[i][choice[i]]
                            .0
                            .iter()
                            .map(|tok| ETok {
                                tok: tok.clone(),
                                hs: None,
                            })
                            .collect()
                    };
                    if let Some(first) = v.first_mut() {
                        first.tok.space = t.space;
                    }
                    if v.is_empty() && raw {
                        v.push(placemarker());
                    }
                    v
                } else {
                    k += 1;
                    vec![ETok {
                        tok: t.clone(),
                        hs: None,
                    }]
                };
                if paste_next {
                    paste_into(&mut os, piece)?;
                    paste_next = false;
                } else {
                    os.extend(piece);
                }
            }
            // Add the macro's hide set.
            for e in &mut os {
                let base_hs = e.hs.take();
                e.hs = match (base_hs, hs) {
                    (None, h) => h.clone(),
                    (Some(b), Some(h)) => hs_union(&Some(b), h),
                    (Some(b), None) => Some(b),
                };
            }
            os.retain(|e| e.tok.kind != Kind::Placemarker);
            out_all.push((os, chosen));
        }
        Ok(out_all)
    }

    /// Every compatible choice of one value per argument, with the merged choices
    /// (depth first, pruning incompatible prefixes).
    fn combinations(
        &mut self,
        expansions: &[Rc<Vec<Value>>],
        base: &Choices,
    ) -> Result<Vec<(Vec<usize>, Choices)>, EvalError> {
        let mut out = Vec::new();
        let mut stack: Vec<(Vec<usize>, Choices)> = vec![(Vec::new(), base.clone())];
        while let Some((prefix, ch)) = stack.pop() {
            self.step(1)?;
            let i = prefix.len();
            if i == expansions.len() {
                out.push((prefix, ch));
                if out.len() > MAX_VALUES {
                    return Err(EvalError::Capped);
                }
                continue;
            }
            for (k, (_, c)) in expansions[i].iter().enumerate().rev() {
                if let Some(m) = merge(&ch, c) {
                    let mut p = prefix.clone();
                    p.push(k);
                    stack.push((p, m));
                }
            }
            if stack.len() > MAX_VALUES {
                return Err(EvalError::Capped);
            }
        }
        Ok(out)
    }
}

/// Adds a value, or loosens the choices of an equal one.
fn add_value(
    results: &mut Vec<Value>,
    seen: &mut FxMap<Vec<Tok>, usize>,
    v: Vec<Tok>,
    choices: Choices,
) -> Result<(), EvalError> {
    match seen.get(&v) {
        Some(&k) => {
            let common = intersect(&results[k].1, &choices);
            results[k].1 = common;
        }
        None => {
            seen.insert(v.clone(), results.len());
            results.push((v, choices));
            if results.len() > MAX_VALUES {
                return Err(EvalError::Capped);
            }
        }
    }
    Ok(())
}

/// The choice key of a symbol (distinct from conditional-chain keys by construction
/// only with overwhelming probability: both are 64-bit hashes).
fn symbol_key(name: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&(b"symbol", name), &mut h);
    std::hash::Hasher::finish(&h)
}

fn placemarker() -> ETok {
    ETok {
        tok: Tok {
            kind: Kind::Placemarker,
            text: Sym::from(&b""[..]),
            space: false,
        },
        hs: None,
    }
}

/// The index of the `)` closing the group whose `(` is at `open`.
fn group_end(body: &[Tok], open: usize) -> Option<usize> {
    if body.get(open).map(|t| &*t.text) != Some(b"(") {
        return None;
    }
    let mut depth = 0usize;
    for (k, t) in body.iter().enumerate().skip(open) {
        match &*t.text {
            b"(" => depth += 1,
            b")" => {
                depth -= 1;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Pastes `piece` onto the last token of `os` (`##`).
fn paste_into(os: &mut Vec<ETok>, piece: Vec<ETok>) -> Result<(), EvalError> {
    let mut piece = piece.into_iter();
    let Some(right) = piece.next() else {
        return Ok(());
    };
    for t in [os.last().map(|e| &e.tok), Some(&right.tok)]
        .into_iter()
        .flatten()
    {
        if let Some(w) = wild_symbol(t) {
            return Err(EvalError::Widened(w));
        }
    }
    match os.pop() {
        None => os.push(right),
        Some(left) if left.tok.kind == Kind::Placemarker => os.push(right),
        Some(left) if right.tok.kind == Kind::Placemarker => os.push(left),
        Some(left) => {
            let mut text = left.tok.text.to_vec();
            text.extend_from_slice(&right.tok.text);
            let toks = tokenize(&text);
            let hs = hs_intersect(&left.hs, &right.hs);
            let hs = (!hs.is_empty()).then(|| Rc::new(hs));
            for (n, mut t) in toks.into_iter().enumerate() {
                t.space = if n == 0 { left.tok.space } else { t.space };
                os.push(ETok {
                    tok: t,
                    hs: hs.clone(),
                });
            }
        }
    }
    os.extend(piece);
    Ok(())
}

/// `#arg`: the argument's spelling as a string literal.
fn stringize(arg: &[ETok]) -> Result<Tok, EvalError> {
    if let Some(w) = arg.iter().find_map(|e| wild_symbol(&e.tok)) {
        return Err(EvalError::Widened(w));
    }
    let mut s = vec![b'"'];
    for (i, e) in arg.iter().enumerate() {
        if e.tok.kind == Kind::Placemarker {
            continue;
        }
        if i > 0 && e.tok.space {
            s.push(b' ');
        }
        if matches!(e.tok.kind, Kind::Str | Kind::Char) {
            for &c in e.tok.text.iter() {
                if c == b'"' || c == b'\\' {
                    s.push(b'\\');
                }
                s.push(c);
            }
        } else {
            s.extend_from_slice(&e.tok.text);
        }
    }
    s.push(b'"');
    Ok(Tok {
        kind: Kind::Str,
        text: s.into(),
        space: false,
    })
}

/// Collects a macro call's arguments from `rest` (reversed; the next token is last).
/// Returns the arguments, the closing parenthesis's hide set and the number of tokens
/// consumed, or `None` when no complete call follows.
#[allow(clippy::type_complexity)]
fn collect_args(rest: &[ETok]) -> Option<(Vec<Vec<ETok>>, Option<HideSet>, usize)> {
    let mut it = rest.iter().rev();
    let open = it.next()?;
    if &*open.tok.text != b"(" || open.tok.kind != Kind::Punct {
        return None;
    }
    let mut args: Vec<Vec<ETok>> = vec![Vec::new()];
    let mut depth = 0usize;
    let mut consumed = 1;
    for t in it {
        consumed += 1;
        if t.tok.kind == Kind::Punct {
            match &*t.tok.text {
                b"(" => depth += 1,
                b")" if depth == 0 => {
                    for a in &mut args {
                        if let Some(f) = a.first_mut() {
                            f.tok.space = false;
                        }
                    }
                    return Some((args, t.hs.clone(), consumed));
                }
                b")" => depth -= 1,
                b"," if depth == 0 => {
                    args.push(Vec::new());
                    continue;
                }
                _ => {}
            }
        }
        args.last_mut()
            .expect("args is never empty")
            .push(t.clone());
    }
    None
}

/// Whether `args` fit a macro with `n` parameters; adjusts nothing.
fn arity_ok(n: usize, variadic: bool, args: &[Vec<ETok>]) -> bool {
    if n == 0 {
        return args.len() == 1 && args[0].is_empty();
    }
    if variadic {
        args.len() >= n || args.len() == n - 1
    } else {
        args.len() == n
    }
}

#[cfg(test)]
mod tests {
    use super::super::scan;
    use super::*;
    use std::time::Duration;

    /// Queues the definitions of a file with text `src`.
    fn queue_scan(t: &MacroTable, src: &str, key: u64) {
        let s = scan::scan(src.as_bytes());
        t.define_later(s.defines, s.undefs, key);
    }

    #[test]
    fn a_checked_result_stays_current_until_a_symbol_changes() {
        let t = MacroTable::default();
        let file = |src: &str, key: u64| queue_scan(&t, src, key);
        file("#define A 1\n#define B 1\n", 1);
        let deps = vec![(Sym::from(&b"A"[..]), t.version(b"A"))];
        let checked = Checked::default();
        assert!(t.current(&deps, &checked));
        assert!(t.current(&deps, &checked));
        // Another symbol changes: looked up again, still current.
        file("#define B 2\n", 2);
        assert!(t.current(&deps, &checked));
        // A queued definition of A, not yet entered, makes it stale at once.
        file("#define A 2\n", 3);
        assert!(!t.current(&deps, &checked));
        assert!(!t.current(&deps, &checked));
        // Nothing to depend on: always current.
        assert!(t.current(&[], &Checked::default()));
    }

    #[test]
    fn queued_definitions_are_seen_by_every_later_read() {
        let t = MacroTable::default();
        let file = |src: &str, key: u64| queue_scan(&t, src, key);
        file("#define A 1\n#define B x\n", 1);
        assert_eq!(t.get(b"A").unwrap().defs.len(), 1);
        // Queued after the first read (which sorted the queue): still seen.
        file("#define A 2\n#undef B\n#define C\n", 2);
        assert_eq!(t.get(b"A").unwrap().defs.len(), 2);
        let b = t.get(b"B").unwrap();
        assert!(b.maybe_undefined && b.defs.len() == 1);
        assert!(t.get(b"C").is_some() && t.get(b"D").is_none());
        let v = t.version(b"A");
        file("#define A 3\n", 3);
        assert!(t.version(b"A") > v);
        // Many readers while files queue up: each read sees what was queued before it.
        std::thread::scope(|s| {
            let t = &t;
            s.spawn(move || {
                for k in 0..200u64 {
                    let s = scan::scan(format!("#define M{k} {k}\n").as_bytes());
                    t.define_later(s.defines, s.undefs, 10 + k);
                }
            });
            for _ in 0..2 {
                s.spawn(move || {
                    let mut seen = 0;
                    while seen < 200 {
                        // M{k} is queued before M{k+1}: whoever sees the later one
                        // sees the earlier one.
                        let later = t.get(format!("M{}", seen + 1).as_bytes()).is_some();
                        let this = t.get(format!("M{seen}").as_bytes()).is_some();
                        assert!(this || !later, "M{} seen before M{seen}", seen + 1);
                        if this {
                            seen += 1;
                        } else {
                            std::thread::yield_now();
                        }
                    }
                });
            }
        });
        t.clear();
        assert!(t.get(b"A").is_none());
    }

    fn table(src: &str) -> MacroTable {
        let t = MacroTable::default();
        let s = scan::scan(src.as_bytes());
        for d in &s.defines {
            t.define(d.name(), MacroDef::from_define(d, 0));
        }
        for u in &s.undefs {
            t.undefine(u);
        }
        t
    }

    fn names(t: &MacroTable, expr: &str) -> Vec<String> {
        let mut b = Budget::start(Duration::from_secs(10));
        evaluate(expr.as_bytes(), t, &mut b)
            .unwrap()
            .names
            .into_iter()
            .map(|n| match n {
                HeaderName::Quote(q) => format!("\"{}\"", String::from_utf8_lossy(&q)),
                HeaderName::Angle(a) => format!("<{}>", String::from_utf8_lossy(&a)),
            })
            .collect()
    }

    #[test]
    fn object_like_and_literal() {
        let t = table("#define H \"a.h\"\n#define S <sys/b.h>\n");
        assert_eq!(names(&t, "H"), vec!["\"a.h\""]);
        assert_eq!(names(&t, "S"), vec!["<sys/b.h>"]);
        assert_eq!(names(&t, "\"lit.h\""), vec!["\"lit.h\""]);
        assert!(names(&t, "UNKNOWN").is_empty());
    }

    #[test]
    fn function_like_stringize_and_paste() {
        let t = table(
            "#define STR(x) #x\n#define XSTR(x) STR(x)\n#define CAT(a, b) a##b\n\
             #define XCAT(a,b) CAT(a,b)\n#define PLAT linux\n\
             #define HDR(n) XSTR(XCAT(n, _impl.h))\n#define ARCH_H(a) <arch/a/defs.h>\n\
             #define VER 2\n#define V(n) XSTR(CAT(v, n).h)\n",
        );
        assert_eq!(names(&t, "STR(foo.h)"), vec!["\"foo.h\""]);
        assert_eq!(names(&t, "XSTR(PLAT.h)"), vec!["\"linux.h\""]);
        assert_eq!(names(&t, "STR(PLAT.h)"), vec!["\"PLAT.h\""]);
        assert_eq!(names(&t, "HDR(PLAT)"), vec!["\"linux_impl.h\""]);
        assert_eq!(names(&t, "ARCH_H(PLAT)"), vec!["<arch/linux/defs.h>"]);
        // `n` is not next to `#`/`##` in V's body, so it is expanded before CAT pastes.
        assert_eq!(names(&t, "V(VER)"), vec!["\"v2.h\""]);
        assert_eq!(names(&t, "STR(CAT(v, VER).h)"), vec!["\"CAT(v, VER).h\""]);
        assert_eq!(names(&t, "XSTR(XCAT(v, VER).h)"), vec!["\"v2.h\""]);
    }

    #[test]
    fn multi_valued() {
        let t = table(
            "#define CFG \"one.h\"\n#define CFG \"two.h\"\n#define CFG \"one.h\"\n\
             #define STR(x) #x\n#define XSTR(x) STR(x)\n#define P a\n#define P b\n\
             #define Q 1\n#define Q 2\n#define PQ(p,q) XSTR(p/q.h)\n",
        );
        assert_eq!(names(&t, "CFG"), vec!["\"one.h\"", "\"two.h\""]);
        assert_eq!(
            names(&t, "PQ(P, Q)"),
            vec!["\"a/1.h\"", "\"a/2.h\"", "\"b/1.h\"", "\"b/2.h\""]
        );
        // A symbol that was #undef'd may also be left unexpanded.
        let t2 = table("#define STR(x) #x\n#define XSTR(x) STR(x)\n#define M m\n#undef M\n");
        assert_eq!(names(&t2, "XSTR(M.h)"), vec!["\"M.h\"", "\"m.h\""]);
        // Versions grow with definitions only when they are new.
        assert_eq!(t.version(b"CFG"), 4);
        assert_eq!(t.version(b"NOPE"), 0);
    }

    #[test]
    fn self_reference_and_rescan() {
        let t = table(
            "#define A A B\n#define B A\n#define F(x) G\n#define G(y) <y.h>\n\
             #define EMPTY\n#define LP (\n#define ID(x) x\n",
        );
        let mut b = Budget::start(Duration::from_secs(10));
        let e = evaluate(b"A", &t, &mut b).unwrap();
        assert!(e.names.is_empty());
        // The arguments of G come from the rest of the input after F's expansion.
        assert_eq!(names(&t, "F(1)(g)"), vec!["<g.h>"]);
        assert_eq!(names(&t, "ID(<x.h>) EMPTY"), vec!["<x.h>"]);
        assert!(names(&t, "G LP z)").is_empty() || names(&t, "G LP z)") == vec!["<z.h>"]);
    }

    #[test]
    fn variadic_and_va_opt() {
        let t = table(
            "#define FIRST(x, ...) x\n#define REST(x, ...) __VA_ARGS__\n\
             #define OPT(x, ...) x __VA_OPT__(<o.h>)\n#define NAMED(a...) <a>\n",
        );
        assert_eq!(names(&t, "FIRST(\"f.h\", 1, 2)"), vec!["\"f.h\""]);
        assert_eq!(names(&t, "REST(1, \"r.h\")"), vec!["\"r.h\""]);
        assert_eq!(names(&t, "OPT(, 1)"), vec!["<o.h>"]);
        assert!(names(&t, "OPT(x)").is_empty());
        assert_eq!(names(&t, "NAMED(n.h)"), vec!["<n.h>"]);
    }

    #[test]
    fn paste_with_empty_and_angle_spacing() {
        let t = table(
            "#define CAT(a,b) a ## b\n#define SYS(x) <x>\n#define DIR sys\n\
             #define PATH(d, f) <d/f>\n",
        );
        assert_eq!(names(&t, "SYS(CAT(,x.h))"), vec!["<x.h>"]);
        assert_eq!(names(&t, "PATH(DIR, t.h)"), vec!["<sys/t.h>"]);
    }

    #[test]
    fn explicit_step_bounds() {
        let t = table("#define A \"a.h\"\n#undef A\n#define B A\n");
        let mut b = Budget::start(Duration::from_secs(30));
        let e =
            evaluate_bounded(b"B", &t, &mut b, true, MAX_STEPS, MAX_STEPS_UNDEFINED_PASS).unwrap();
        assert_eq!(e.names, vec![HeaderName::Quote(b"a.h".to_vec())]);
        assert!(e.complete);
        // The second pass over its bound: the first pass's names stand, incomplete.
        let e = evaluate_bounded(b"B", &t, &mut b, true, MAX_STEPS, 1).unwrap();
        assert_eq!(e.names, vec![HeaderName::Quote(b"a.h".to_vec())]);
        assert!(!e.complete);
        let f = evaluate_bounded(b"B", &t, &mut b, true, 1, 1).unwrap_err();
        assert_eq!(f.error, EvalError::Capped);
        assert!(f.deps.iter().any(|(s, _)| &**s == b"B"));
    }

    #[test]
    fn runaway_is_capped_not_hung() {
        // Each of 14 symbols has 3 definitions: 3^14 combinations.
        let mut src = String::new();
        let mut expr = String::from("CAT(");
        for i in 0..14 {
            for v in ["a", "b", "c"] {
                src.push_str(&format!("#define A{i} {v}{i}\n"));
            }
            expr.push_str(&format!("A{i} "));
        }
        expr.push(')');
        src.push_str("#define CAT(x) STR(x)\n#define STR(x) #x\n");
        let t = table(&src);
        let mut b = Budget::start(Duration::from_secs(30));
        let r = evaluate(expr.as_bytes(), &t, &mut b);
        assert_eq!(r.unwrap_err().error, EvalError::Capped);
        assert!(b.used() < Duration::from_secs(30));
    }

    #[test]
    fn branch_and_symbol_consistency() {
        // Two variants chosen by the same #if chain never mix; a symbol takes one
        // definition throughout one expansion.
        let t = table(
            "#if MSVC\n#define PRE msvc\n#define POST _m.h\n#else\n#define PRE gnu\n\
             #define POST _g.h\n#endif\n#define STR(x) #x\n#define XSTR(x) STR(x)\n\
             #define CAT(a,b) a##b\n#define XCAT(a,b) CAT(a,b)\n#define V one\n#define V two\n",
        );
        assert_eq!(
            names(&t, "XSTR(XCAT(PRE, POST))"),
            vec!["\"gnu_g.h\"", "\"msvc_m.h\""]
        );
        assert_eq!(
            names(&t, "XSTR(V/V.h)"),
            vec!["\"one/one.h\"", "\"two/two.h\""]
        );
    }

    #[test]
    fn widened_counters() {
        let mut src = String::from(
            "#define STR(x) #x\n#define XSTR(x) STR(x)\n#define CAT(a,b) a##b\n\
             #define XCAT(a,b) CAT(a,b)\n#define SECOND(a, b) b\n",
        );
        for i in 0..20 {
            src.push_str(&format!("#define N {i}\n"));
        }
        src.push_str("#define FILE SECOND(N, <fixed.h>)\n");
        let t = table(&src);
        // The counter's value is discarded: one opaque value suffices.
        assert_eq!(names(&t, "FILE"), vec!["<fixed.h>"]);
        // Pasted into the name: every value is enumerated.
        let n = names(&t, "XSTR(XCAT(f, N).h)");
        assert_eq!(n.len(), 20);
        assert!(n.contains(&"\"f17.h\"".to_string()));
        // Spelled inside <...>.
        assert_eq!(names(&t, "<d/N>").len(), 20);
    }

    #[test]
    fn tokenizer() {
        let t = tokenize(b"a##b u8\"s\" 1.5e+3 ... <x/y.h> 'c'");
        let texts: Vec<_> = t
            .iter()
            .map(|t| String::from_utf8_lossy(&t.text).into_owned())
            .collect();
        assert_eq!(
            texts,
            vec![
                "a", "##", "b", "u8\"s\"", "1.5e+3", "...", "<", "x", "/", "y", ".", "h", ">",
                "'c'"
            ]
        );
        assert!(t[3].space && !t[2].space);
    }
}
