//! The directive scanner (spec 5.5, improved): finds every `#include`, `#include_next`,
//! `#import`, `#embed`, `#define` and `#undef` in a file's bytes, plus the operands of
//! `__has_include`/`__has_include_next`/`__has_embed` in `#if`/`#elif` lines.
//!
//! It lexes like the C preprocessor's translation phases 1-3, over bytes (any encoding):
//! backslash-newline splices are removed everywhere outside raw strings (also inside
//! directive names); `/* */` and `//` comments are skipped (a directive inside a comment
//! does not count; a block comment inside a directive line continues the line); string,
//! character and C++ raw string literals (`R"d(...)d"`, with `u8`, `u`, `U`, `L` prefixes)
//! are skipped so a `/*` or `"` inside them changes nothing; digit separators
//! (`1'000`) are not character literals. Conditionals are not evaluated: directives in
//! every branch, including `#if 0`, count (conservative).

use std::sync::Arc;

/// How an include names its file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncludeForm {
    /// `"name"`.
    Quote(Vec<u8>),
    /// `<name>`.
    Angle(Vec<u8>),
    /// A macro expression (comments removed, whitespace trimmed).
    Computed(Vec<u8>),
}

/// One include-like directive or `__has_include` operand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    /// The operand.
    pub form: IncludeForm,
    /// `#include_next` or `__has_include_next`.
    pub next: bool,
    /// `#embed` or `__has_embed`: the file is read but not scanned for directives.
    pub embed: bool,
}

/// One `#define`. A file's definitions share one buffer holding their texts (each from
/// its name to the end of its replacement list), and the defines of one conditional
/// branch share its list of branches: a header's scan makes a few allocations per file,
/// not one or two per definition. System headers hold thousands of definitions and few
/// are ever looked up, so the parameter list is split only when asked for.
#[derive(Clone)]
pub struct Define {
    /// The buffer holding this definition's text (and its file's other definitions').
    text: Arc<Vec<u8>>,
    /// Where the name starts and ends in `text`.
    name: (u32, u32),
    /// For a function-like macro, the text between its parentheses.
    params: Option<(u32, u32)>,
    /// The replacement list, trimmed.
    body: (u32, u32),
    /// The conditional branches it sits in, outermost first: (chain number within the
    /// file, branch index within the `#if`/`#elif`/`#else` chain).
    pub cond: Arc<[(u32, u32)]>,
}

/// Where a definition's parts lie in its directive's text (after `define`).
struct DefineParts {
    name: (usize, usize),
    params: Option<(usize, usize)>,
    body: (usize, usize),
}

impl DefineParts {
    /// Splits the text of a `#define` after its directive name; `None` when it defines
    /// nothing (no name, or a parameter list without its `)`).
    fn of(rest: &[u8]) -> Option<DefineParts> {
        let start = rest.iter().take_while(|&&c| is_hspace(c)).count();
        let len = rest[start..].iter().take_while(|&&c| is_ident(c)).count();
        if len == 0 || rest[start].is_ascii_digit() {
            return None;
        }
        let name = (start, start + len);
        let trimmed = |from: usize, to: usize| {
            let lead = rest[from..to].iter().take_while(|&&c| is_hspace(c)).count();
            let tail = rest[from + lead..to]
                .iter()
                .rev()
                .take_while(|&&c| is_hspace(c))
                .count();
            (from + lead, to - tail)
        };
        if rest.get(name.1) == Some(&b'(') {
            let close = name.1 + rest[name.1..].iter().position(|&c| c == b')')?;
            Some(DefineParts {
                name,
                params: Some((name.1 + 1, close)),
                body: trimmed(close + 1, rest.len()),
            })
        } else {
            Some(DefineParts {
                name,
                params: None,
                body: trimmed(name.1, rest.len()),
            })
        }
    }
}

impl Define {
    /// The definition in `rest`, the text of a `#define` directive after its name, in a
    /// buffer of its own.
    fn alone(rest: &[u8]) -> Option<Define> {
        let mut scan = Scan::default();
        scan.define(rest);
        scan.finish().defines.pop()
    }

    fn part(&self, (a, b): (u32, u32)) -> &[u8] {
        &self.text[a as usize..b as usize]
    }

    /// The macro name.
    pub fn name(&self) -> &[u8] {
        self.part(self.name)
    }

    /// The parameter list's items, trimmed (none when it holds only blanks).
    fn raw_params(&self) -> Option<impl Iterator<Item = &[u8]> + '_> {
        let inner = trim(self.part(self.params?));
        Some(
            inner
                .split(|&c| c == b',')
                .filter(move |_| !inner.is_empty())
                .map(trim),
        )
    }

    /// The trimmed parameter names of a function-like macro (a variadic `...` becomes
    /// `__VA_ARGS__`; a named variadic `args...` becomes `args`).
    pub fn params(&self) -> Option<impl Iterator<Item = &[u8]> + '_> {
        Some(self.raw_params()?.map(|p| {
            if p == b"..." {
                &b"__VA_ARGS__"[..]
            } else if let Some(named) = p.strip_suffix(b"...") {
                trim(named)
            } else {
                p
            }
        }))
    }

    /// Whether a parameter is variadic (`...` or `name...`).
    pub fn variadic(&self) -> bool {
        self.raw_params()
            .is_some_and(|mut ps| ps.any(|p| p.ends_with(b"...")))
    }

    /// The replacement text, comments removed, trimmed.
    pub fn body(&self) -> &[u8] {
        self.part(self.body)
    }
}

impl PartialEq for Define {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
            && self.params().map(Iterator::collect::<Vec<_>>)
                == other.params().map(Iterator::collect::<Vec<_>>)
            && self.variadic() == other.variadic()
            && self.body() == other.body()
            && self.cond == other.cond
    }
}

impl Eq for Define {}

impl std::fmt::Debug for Define {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_struct("Define")
            .field("name", &text(self.name()))
            .field(
                "params",
                &self.params().map(|ps| ps.map(text).collect::<Vec<_>>()),
            )
            .field("body", &text(self.body()))
            .field("cond", &self.cond)
            .finish()
    }
}

/// A definition found by the scan, its text in [`Scan::define_text`].
#[derive(Clone, Debug, PartialEq, Eq)]
struct Found {
    name: (u32, u32),
    params: Option<(u32, u32)>,
    body: (u32, u32),
    cond: Arc<[(u32, u32)]>,
}

/// What a file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Include-like directives in file order.
    pub includes: Vec<Include>,
    /// `#define`s in file order.
    pub defines: Vec<Define>,
    /// Names given to `#undef`.
    pub undefs: Vec<Vec<u8>>,
    /// Open conditionals while scanning: (chain number, branch index).
    conds: Vec<(u32, u32)>,
    /// `conds` as the defines share it, made at the first define after it changed.
    conds_shared: Option<Arc<[(u32, u32)]>>,
    chains: u32,
    /// While scanning: the texts of the definitions found, one after the other.
    define_text: Vec<u8>,
    /// While scanning: the definitions found, made into [`Scan::defines`] at the end.
    found: Vec<Found>,
}

impl Scan {
    /// Records the definition in `rest`, the text of a `#define` after its name.
    /// (A file whose definitions' texts add up to 4 GiB or more keeps the first 4 GiB.)
    fn define(&mut self, rest: &[u8]) {
        let Some(p) = DefineParts::of(rest) else {
            return;
        };
        let (from, to) = (p.name.0, p.body.1.max(p.params.map_or(0, |q| q.1 + 1)));
        let base = self.define_text.len();
        // Every part lies within `from..to`: when `to` fits, they all do.
        if u32::try_from(base + to - from).is_err() {
            return;
        }
        let at = |(a, b): (usize, usize)| ((base + a - from) as u32, (base + b - from) as u32);
        self.define_text.extend_from_slice(&rest[from..to]);
        let conds = &self.conds;
        let cond = self
            .conds_shared
            .get_or_insert_with(|| Arc::from(&conds[..]))
            .clone();
        self.found.push(Found {
            name: at(p.name),
            params: p.params.map(at),
            body: at(p.body),
            cond,
        });
    }

    /// Makes the definitions found into [`Scan::defines`], sharing one buffer.
    fn finish(mut self) -> Scan {
        let text = Arc::new(std::mem::take(&mut self.define_text));
        self.defines = std::mem::take(&mut self.found)
            .into_iter()
            .map(|f| Define {
                text: text.clone(),
                name: f.name,
                params: f.params,
                body: f.body,
                cond: f.cond,
            })
            .collect();
        self
    }
}

fn is_ident(c: u8) -> bool {
    CLASS[c as usize] & IDENT != 0
}

fn is_hspace(c: u8) -> bool {
    CLASS[c as usize] & HSPACE != 0
}

/// Skips backslash-newline splices at `i`; returns the index of the next real byte.
fn skip_splices(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i] == b'\\' {
        if s.get(i + 1) == Some(&b'\n') {
            i += 2;
        } else if s.get(i + 1) == Some(&b'\r') && s.get(i + 2) == Some(&b'\n') {
            i += 3;
        } else {
            break;
        }
    }
    i
}

/// The byte at `i` after splices, and the index just past it.
fn next(s: &[u8], i: usize) -> Option<(u8, usize)> {
    let i = skip_splices(s, i);
    s.get(i).map(|&c| (c, i + 1))
}

/// Skips a block comment whose `/*` ends just before `i`; returns the index after `*/`.
fn skip_block_comment(s: &[u8], mut i: usize) -> usize {
    // Most comments hold no backslash: their end is the first `*/`, found in one search
    // (documentation comments have a `*` on every line).
    static END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"*/"));
    let rest = &s[i.min(s.len())..];
    if let Some(k) = END.find(rest) {
        if memchr::memchr(b'\\', &rest[..k]).is_none() {
            return i + k + 2;
        }
    }
    loop {
        match memchr::memchr(b'*', &s[i.min(s.len())..]) {
            None => return s.len(),
            Some(k) => {
                i += k + 1;
                if let Some((b'/', j)) = next(s, i) {
                    return j;
                }
            }
        }
    }
}

/// Skips a line comment starting at `i` (after `//`); returns the index of the newline
/// that ends it (continued lines are part of it).
fn skip_line_comment(s: &[u8], mut i: usize) -> usize {
    loop {
        match memchr::memchr(b'\n', &s[i.min(s.len())..]) {
            None => return s.len(),
            Some(k) => {
                let nl = i + k;
                let spliced = (nl >= 1 && s[nl - 1] == b'\\')
                    || (nl >= 2 && s[nl - 1] == b'\r' && s[nl - 2] == b'\\');
                if !spliced {
                    return nl;
                }
                i = nl + 1;
            }
        }
    }
}

/// Skips a string or character literal whose opening `quote` ends just before `i`;
/// appends it (splices removed) to `out` if given. Stops at the closing quote or at an
/// unspliced newline (error recovery, as the preprocessor does).
fn skip_literal(s: &[u8], mut i: usize, quote: u8, mut out: Option<&mut Vec<u8>>) -> usize {
    while let Some((c, j)) = next(s, i) {
        match c {
            b'\n' => return j - 1,
            b'\\' => {
                if let Some(o) = out.as_deref_mut() {
                    o.push(c);
                }
                match next(s, j) {
                    Some((b'\n', _)) | None => return j,
                    Some((e, k)) => {
                        if let Some(o) = out.as_deref_mut() {
                            o.push(e);
                        }
                        i = k;
                        continue;
                    }
                }
            }
            _ => {}
        }
        if let Some(o) = out.as_deref_mut() {
            o.push(c);
        }
        i = j;
        if c == quote {
            return i;
        }
    }
    s.len()
}

/// If a raw string starts at `i` (just after its `R` prefix, at the `"`), returns the
/// index past its end.
fn skip_raw_string(s: &[u8], i: usize) -> Option<usize> {
    let open = s[i + 1..].iter().take(17).position(|&c| c == b'(')?;
    let delim = &s[i + 1..i + 1 + open];
    if delim
        .iter()
        .any(|&c| matches!(c, b' ' | b'\t' | b'\n' | b'\\' | b')' | b'"' | b'\r'))
    {
        return None;
    }
    let body = i + 1 + open + 1;
    let mut close = Vec::with_capacity(delim.len() + 2);
    close.push(b')');
    close.extend_from_slice(delim);
    close.push(b'"');
    match memchr::memmem::find(&s[body..], &close) {
        Some(k) => Some(body + k + close.len()),
        None => Some(s.len()),
    }
}

/// Byte classes for the scanner's tables.
const IDENT: u8 = 1;
/// Bytes that end a stretch of ordinary code: a newline, a possible comment, a literal
/// or a splice.
const STOP: u8 = 2;
const HSPACE: u8 = 4;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80 {
            t[c] |= IDENT;
        }
        if matches!(b, b'\n' | b'/' | b'"' | b'\'' | b'\\') {
            t[c] |= STOP;
        }
        if matches!(b, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c') {
            t[c] |= HSPACE;
        }
        c += 1;
    }
    t
};

/// Whether a preprocessing number ends exactly at `end`, the stretch since `floor` holding
/// no literal or comment; returns where it starts. Identifiers and numbers are told apart
/// by lexing forward from the start of the run of bytes that can belong to either.
fn number_ending_at(s: &[u8], floor: usize, end: usize) -> Option<usize> {
    let mut r = end;
    while r > floor {
        let c = s[r - 1];
        let sign_of_exponent = (c == b'+' || c == b'-')
            && r - 1 > floor
            && matches!(s[r - 2], b'e' | b'E' | b'p' | b'P');
        if CLASS[c as usize] & IDENT != 0 || c == b'.' || c == b'\'' || sign_of_exponent {
            r -= 1;
        } else {
            break;
        }
    }
    let mut k = r;
    while k < end {
        let c = s[k];
        if c.is_ascii_digit() || (c == b'.' && s.get(k + 1).is_some_and(u8::is_ascii_digit)) {
            let e = skip_number(s, k);
            if e >= end {
                return Some(k);
            }
            k = e;
        } else if is_ident(c) {
            while k < end && is_ident(s[k]) {
                k += 1;
            }
        } else {
            k += 1;
        }
    }
    None
}

/// The identifier that ends exactly at `end` (empty if none, or if it is part of a
/// preprocessing number).
fn identifier_ending_at(s: &[u8], floor: usize, end: usize) -> &[u8] {
    let mut r = end;
    while r > floor && is_ident(s[r - 1]) {
        r -= 1;
    }
    if r == end || number_ending_at(s, floor, end).is_some() {
        return &[];
    }
    &s[r..end]
}

/// Finds the next byte that can change the lexing state of code: `#`, `/`, a quote, a
/// backslash or `%` (of the `%:` digraph). Newlines are not among them: a directive's `#`
/// is found first and its line start checked then ([`at_line_start`]), so a stretch of
/// plain code lines takes one search. Two vectorized searches (`memchr` takes at most
/// three bytes) each remember where their next match is, so no byte is searched twice.
#[derive(Default)]
struct Stops {
    /// The next `#`, `/` or `"` at or after the last search; `None` before the first.
    common: Option<usize>,
    /// The next `'`, `\\` or `%`.
    rare: Option<usize>,
}

impl Stops {
    fn next(&mut self, s: &[u8], i: usize) -> usize {
        let at = |found: Option<usize>| found.map_or(s.len(), |k| i + k);
        let common = match self.common {
            Some(p) if p >= i => p,
            _ => at(memchr::memchr3(b'#', b'/', b'"', &s[i..])),
        };
        let rare = match self.rare {
            Some(p) if p >= i => p,
            _ => at(memchr::memchr3(b'\'', b'\\', b'%', &s[i..])),
        };
        self.common = Some(common);
        self.rare = Some(rare);
        common.min(rare)
    }
}

/// Whether only blanks precede `at` on its line, given that no byte from `floor` to `at`
/// changes the lexing state (they are all plain code, blanks or newlines) and that
/// `floor_at_start` tells whether only blanks, comments and splices precede `floor` on
/// its line.
fn at_line_start(s: &[u8], floor: usize, floor_at_start: bool, at: usize) -> bool {
    let from = match memchr::memrchr(b'\n', &s[floor..at]) {
        Some(k) => floor + k + 1,
        None if floor_at_start => floor,
        None => return false,
    };
    s[from..at].iter().all(|&c| CLASS[c as usize] & HSPACE != 0)
}

/// Scans a whole file.
///
/// It jumps from one byte that can change the lexing state (`#`, `/`, quote, backslash,
/// `%`) to the next: a `#` (or `%:`) with only blanks, comments and splices before it on
/// its line starts a directive. It decides about raw-string prefixes and digit
/// separators by looking back at the token just before (never past `floor`, the end of
/// the last literal, comment or directive).
pub fn scan(s: &[u8]) -> Scan {
    let mut out = Scan::default();
    // A UTF-8 byte-order mark is not part of the first line.
    let mut i = if s.starts_with(b"\xef\xbb\xbf") { 3 } else { 0 };
    let mut floor = i;
    // Whether only blanks, comments and splices precede `floor` on its line.
    let mut floor_at_start = true;
    let mut line = Vec::new();
    let mut stops = Stops::default();
    loop {
        i = stops.next(s, i);
        let Some(&c) = s.get(i) else { break };
        match c {
            b'#' | b'%' => {
                let after = if c == b'#' {
                    Some(i + 1)
                } else {
                    match next(s, i + 1) {
                        Some((b':', j)) => Some(j),
                        _ => None,
                    }
                };
                match after {
                    Some(j) if at_line_start(s, floor, floor_at_start, i) => {
                        // Up to the newline that ends it.
                        i = match bare_directive(s, j, &mut out) {
                            Some(end) => end,
                            None => directive_line(s, j, &mut line, &mut out),
                        };
                        floor = i;
                        floor_at_start = false;
                    }
                    _ => i += 1,
                }
            }
            b'\\' | b'/' => match splice_or_comment_end(s, i) {
                Some(end) => {
                    // A comment or splice leaves the line as it found it.
                    floor_at_start = at_line_start(s, floor, floor_at_start, i);
                    i = end;
                    floor = i;
                }
                None => i += 1,
            },
            b'"' => {
                let raw = matches!(
                    identifier_ending_at(s, floor, i),
                    b"R" | b"u8R" | b"uR" | b"UR" | b"LR"
                );
                i = match raw.then(|| skip_raw_string(s, i)).flatten() {
                    Some(end) => end,
                    None => skip_literal(s, i + 1, c, None),
                };
                floor = i;
                floor_at_start = false;
            }
            _ => {
                // A quote: a digit separator inside a number, or a character literal.
                match number_ending_at(s, floor, i) {
                    Some(start) if skip_number(s, start) > i => i = skip_number(s, start),
                    _ => i = skip_literal(s, i + 1, c, None),
                }
                floor = i;
                floor_at_start = false;
            }
        }
    }
    out.finish()
}

/// The index of the first byte at or after `i` that is not a space or a tab (the
/// indentation of a line), eight bytes at a time.
fn skip_blanks(s: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const LOW7: u64 = ONES * 0x7f;
    const HIGH: u64 = ONES * 0x80;
    // The high bit of each byte of `w` that is zero (exact: no carry between bytes).
    let zero = |w: u64| !(((w & LOW7) + LOW7) | w) & HIGH;
    while let Some(chunk) = s.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let blank = zero(w ^ (ONES * u64::from(b' '))) | zero(w ^ (ONES * u64::from(b'\t')));
        let other = !blank & HIGH;
        if other != 0 {
            return i + (other.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && matches!(s[i], b' ' | b'\t') {
        i += 1;
    }
    i
}

/// A directive whose text after the name does not matter (`#endif`, `#else`, `#ifdef`,
/// `#ifndef`, `#pragma`, `#error`, ...), taken without collecting its line: records it
/// and returns the index of the newline that ends it. `None` for any other directive,
/// or when a splice or comment touches the name (the general path handles those).
fn bare_directive(s: &[u8], j: usize, out: &mut Scan) -> Option<usize> {
    let start = skip_blanks(s, j);
    let len = s[start..].iter().take_while(|&&c| is_ident(c)).count();
    let end = start + len;
    if len == 0 || s.get(end) == Some(&b'\\') {
        return None;
    }
    let name = &s[start..end];
    match name {
        b"endif" | b"else" | b"ifdef" | b"ifndef" | b"pragma" | b"error" | b"warning" | b"line"
        | b"ident" | b"sccs" | b"assert" | b"unassert" => {}
        _ => return None,
    }
    directive(name, out);
    Some(directive_end(s, end))
}

/// The index of the unspliced newline that ends the directive line containing `i` (or
/// the end of `s`), seen as [`collect_directive`] sees it: a block comment may carry the
/// line on, a line comment ends it, a literal ends at its quote or at a newline.
fn directive_end(s: &[u8], mut i: usize) -> usize {
    loop {
        let Some(k) = s[i.min(s.len())..]
            .iter()
            .position(|&c| CLASS[c as usize] & STOP != 0)
            .map(|k| i + k)
        else {
            return s.len();
        };
        match s[k] {
            b'\n' => return k,
            b'\\' => {
                let j = skip_splices(s, k);
                i = if j == k { k + 1 } else { j };
            }
            b'/' => match next(s, k + 1) {
                Some((b'*', m)) => i = skip_block_comment(s, m),
                Some((b'/', m)) => return skip_line_comment(s, m),
                _ => i = k + 1,
            },
            quote => i = skip_literal(s, k + 1, quote, None),
        }
    }
}

/// If a backslash-newline splice or a comment starts at `i` (at a `\\` or `/`), the index
/// just past it (a line comment ends at its newline, which stays to be seen).
fn splice_or_comment_end(s: &[u8], i: usize) -> Option<usize> {
    if s[i] == b'\\' {
        let j = skip_splices(s, i);
        return (j != i).then_some(j);
    }
    match next(s, i + 1) {
        Some((b'*', j)) => Some(skip_block_comment(s, j)),
        Some((b'/', j)) => Some(skip_line_comment(s, j)),
        _ => None,
    }
}

/// Reads one directive whose text starts at `j` (just after `#`) and records it; returns
/// the index of the newline that ends it.
fn directive_line(s: &[u8], j: usize, line: &mut Vec<u8>, out: &mut Scan) -> usize {
    let nl = memchr::memchr(b'\n', &s[j..]).map_or(s.len(), |k| j + k);
    let text = &s[j..nl];
    // Most directive lines hold no comment, splice or escape: they are their own
    // logical line, literals and header names included.
    if plain_line(text) {
        directive(text, out);
        return nl;
    }
    line.clear();
    let end = collect_directive(s, j, line);
    directive(line, out);
    end
}

/// Whether a line (without its newline) holds no backslash and no `//` or `/*`: then
/// no comment starts in it and nothing is spliced or escaped, so [`collect_directive`]
/// would collect it unchanged (a literal or header name is copied as it is, and ends on
/// the line).
fn plain_line(text: &[u8]) -> bool {
    if memchr::memchr(b'\\', text).is_some() {
        return false;
    }
    let mut at = 0;
    while let Some(k) = memchr::memchr(b'/', &text[at..]) {
        at += k + 1;
        if matches!(text.get(at), Some(b'/' | b'*')) {
            return false;
        }
    }
    true
}

/// Skips a preprocessing number (digits, letters, `.`, `'` separators, exponent signs).
fn skip_number(s: &[u8], mut i: usize) -> usize {
    while i < s.len() {
        let c = s[i];
        if is_ident(c) || c == b'.' {
            i += 1;
        } else if c == b'\'' && i + 1 < s.len() && is_ident(s[i + 1]) {
            i += 2;
        } else if (c == b'+' || c == b'-') && matches!(s[i - 1], b'e' | b'E' | b'p' | b'P') {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Collects a directive's logical line, from just after `#` to its unspliced newline,
/// into `line`: splices removed, comments replaced by a space, literals and an
/// include's `<header-name>` copied verbatim. Returns the index of that newline.
fn collect_directive(s: &[u8], mut i: usize, line: &mut Vec<u8>) -> usize {
    // 0: before the name; 1: in the name; 2: after an include-like name, before its
    // operand; 3: anywhere else.
    let mut state = 0u8;
    let mut name_start = 0;
    while let Some((c, j)) = next(s, i) {
        if c == b'\n' {
            return j - 1;
        }
        if state == 1 && !is_ident(c) {
            let name = &line[name_start..];
            state = if matches!(name, b"include" | b"include_next" | b"import" | b"embed") {
                2
            } else {
                3
            };
        }
        match c {
            b'/' => match next(s, j) {
                Some((b'*', k)) => {
                    i = skip_block_comment(s, k);
                    line.push(b' ');
                    continue;
                }
                Some((b'/', k)) => return skip_line_comment(s, k),
                _ => {}
            },
            b'"' | b'\'' => {
                line.push(c);
                i = skip_literal(s, j, c, Some(line));
                if state < 3 {
                    state = 3;
                }
                continue;
            }
            b'<' if state == 2 => {
                line.push(c);
                i = j;
                while let Some((d, k)) = next(s, i) {
                    if d == b'\n' {
                        break;
                    }
                    line.push(d);
                    i = k;
                    if d == b'>' {
                        break;
                    }
                }
                state = 3;
                continue;
            }
            _ => {}
        }
        if state == 0 && is_ident(c) {
            state = 1;
            name_start = line.len();
        } else if state == 2 && !is_hspace(c) {
            state = 3;
        }
        line.push(c);
        i = j;
    }
    s.len()
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if is_hspace(*first) {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if is_hspace(*last) {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn split_ident(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|&&c| is_ident(c)).count();
    s.split_at(n)
}

/// Parses an include operand: `"x"`, `<x>` or an expression.
pub fn include_form(operand: &[u8]) -> Option<IncludeForm> {
    let op = trim(operand);
    let form = match op.first()? {
        b'"' => {
            let end = op[1..].iter().position(|&c| c == b'"')?;
            IncludeForm::Quote(op[1..1 + end].to_vec())
        }
        b'<' => {
            let end = op[1..].iter().position(|&c| c == b'>')?;
            IncludeForm::Angle(op[1..1 + end].to_vec())
        }
        _ => IncludeForm::Computed(op.to_vec()),
    };
    match &form {
        IncludeForm::Quote(n) | IncludeForm::Angle(n) if n.is_empty() => None,
        _ => Some(form),
    }
}

/// Interprets one collected directive line (the text after `#`).
fn directive(line: &[u8], out: &mut Scan) {
    let (name, rest) = split_ident(trim(line));
    match name {
        b"include" | b"import" | b"include_next" | b"embed" => {
            let next = name == b"include_next";
            let embed = name == b"embed";
            // `#embed "f" limit(1)`: only the header-name matters.
            if let Some(form) = include_form(rest) {
                out.includes.push(Include { form, next, embed });
            }
        }
        b"define" => out.define(rest),
        b"ifdef" | b"ifndef" => {
            out.conds.push((out.chains, 0));
            out.conds_shared = None;
            out.chains += 1;
        }
        b"else" => {
            if let Some(top) = out.conds.last_mut() {
                top.1 += 1;
                out.conds_shared = None;
            }
        }
        b"endif" => {
            out.conds.pop();
            out.conds_shared = None;
        }
        b"undef" => {
            let (n, _) = split_ident(trim(rest));
            if !n.is_empty() {
                out.undefs.push(n.to_vec());
            }
        }
        b"if" => {
            out.conds.push((out.chains, 0));
            out.conds_shared = None;
            out.chains += 1;
            has_include_operands(rest, out);
        }
        b"elif" | b"elifdef" | b"elifndef" => {
            if let Some(top) = out.conds.last_mut() {
                top.1 += 1;
                out.conds_shared = None;
            }
            has_include_operands(rest, out);
        }
        _ => {}
    }
}

/// Parses a `#define` after the keyword.
pub fn define(rest: &[u8]) -> Option<Define> {
    Define::alone(rest)
}

/// Finds `__has_include(...)`-style operands in an `#if`/`#elif` expression.
fn has_include_operands(expr: &[u8], out: &mut Scan) {
    // Every operator looked for starts so.
    if memchr::memmem::find(expr, b"__has_").is_none() {
        return;
    }
    let mut i = 0;
    while i < expr.len() {
        if !is_ident(expr[i]) || (i > 0 && is_ident(expr[i - 1])) {
            i += 1;
            continue;
        }
        let (word, rest) = split_ident(&expr[i..]);
        i += word.len();
        let (next, embed) = match word {
            b"__has_include" => (false, false),
            b"__has_include_next" => (true, false),
            b"__has_embed" => (false, true),
            _ => continue,
        };
        let rest = trim(rest);
        if rest.first() != Some(&b'(') {
            continue;
        }
        // The operand runs to the matching parenthesis.
        let mut depth = 0usize;
        let mut end = rest.len();
        for (k, &c) in rest.iter().enumerate() {
            match c {
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        if let Some(form) = include_form(&rest[1..end.max(1)]) {
            out.includes.push(Include { form, next, embed });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(d: &Define) -> Option<Vec<&[u8]>> {
        d.params().map(|p| p.collect())
    }

    fn incs(src: &[u8]) -> Vec<IncludeForm> {
        scan(src).includes.into_iter().map(|i| i.form).collect()
    }

    fn q(s: &str) -> IncludeForm {
        IncludeForm::Quote(s.as_bytes().to_vec())
    }
    fn a(s: &str) -> IncludeForm {
        IncludeForm::Angle(s.as_bytes().to_vec())
    }
    fn e(s: &str) -> IncludeForm {
        IncludeForm::Computed(s.as_bytes().to_vec())
    }

    #[test]
    fn basic_forms() {
        let cases: &[(&[u8], Vec<IncludeForm>)] = &[
            (b"#include \"a.h\"\n", vec![q("a.h")]),
            (b"#include<b.h>\n", vec![a("b.h")]),
            (b"  #  include \"a.h\" junk\n", vec![q("a.h")]),
            (b"#import \"m.h\"\n", vec![q("m.h")]),
            (b"#include \"foo bar.h\"\n", vec![q("foo bar.h")]),
            (b"#include \"x(1).h\"\n", vec![q("x(1).h")]),
            (b"#include MACRO(a, b)  // c\n", vec![e("MACRO(a, b)")]),
            (b"#include \"\"\n#include <>\n", vec![]),
            (b"#includenext \"a.h\"\n#include_nextfoo <b>\n", vec![]),
            (b"#include <a//b.h>\n", vec![a("a//b.h")]),
            (b"#include <a/*b*/.h>\n", vec![a("a/*b*/.h")]),
            (b"x = 1; #include \"no.h\"\n", vec![]),
            (b"%:include \"digraph.h\"\n", vec![q("digraph.h")]),
            (b"#if 0\n#include \"dead.h\"\n#endif\n", vec![q("dead.h")]),
            (b"#include \"nolf.h\"", vec![q("nolf.h")]),
            (b"\xef\xbb\xbf#include \"bom.h\"\n", vec![q("bom.h")]),
            (b"\x0c #include \"ff.h\"\n", vec![q("ff.h")]),
        ];
        for (src, want) in cases {
            assert_eq!(&incs(src), want, "{}", String::from_utf8_lossy(src));
        }
    }

    /// `#endif`, `#else`, `#pragma`, `#error` and the like are taken without collecting
    /// their line; where they end must not change.
    #[test]
    fn directives_whose_text_does_not_matter() {
        let cases: &[(&[u8], Vec<IncludeForm>)] = &[
            (
                b"#endif /* a\n#include \"no1.h\"\n*/\n#include \"a1.h\"\n",
                vec![q("a1.h")],
            ),
            (
                b"#endif // c \\\n#include \"no2.h\"\n#include \"a2.h\"\n",
                vec![q("a2.h")],
            ),
            (
                b"#error \"/* not a comment\n#include \"a3.h\"\n",
                vec![q("a3.h")],
            ),
            (b"#error don't\n#include \"a4.h\"\n", vec![q("a4.h")]),
            (
                b"#pragma x \\\n#include \"no5.h\"\n#include \"a5.h\"\n",
                vec![q("a5.h")],
            ),
            (b"#else /* x */ #include \"no6.h\"\n", vec![]),
            (b" \t #\t endif\n#include \"a7.h\"\n", vec![q("a7.h")]),
            (b"#end\\\nif\n#include \"a8.h\"\n", vec![q("a8.h")]),
            (b"#endif", vec![]),
            (b"#pragma once\r\n#include \"a9.h\"\r\n", vec![q("a9.h")]),
        ];
        for (src, want) in cases {
            assert_eq!(&incs(src), want, "{}", String::from_utf8_lossy(src));
        }
        // Their effect on the conditional branches is kept.
        let s = scan(
            b"#ifdef A /* x */\n#define X 1\n#else // y\n#define X 2\n#endif /* A */\n#define Y\n",
        );
        let conds: Vec<&[(u32, u32)]> = s.defines.iter().map(|d| &d.cond[..]).collect();
        assert_eq!(conds, [&[(0, 0)][..], &[(0, 1)][..], &[][..]]);
    }

    /// Newlines are not searched for: a `#` is checked for a line start when found.
    #[test]
    fn a_directive_starts_its_line() {
        let cases: &[(&[u8], Vec<IncludeForm>)] = &[
            (b"x /* a\n b */ #include \"no1.h\"\n", vec![]),
            (b"a = b % c;\n%:include \"d.h\"\n", vec![q("d.h")]),
            (b"x % : y;\n%: include <e.h>\n", vec![a("e.h")]),
            (b"  \\\n  #include \"s.h\"\n", vec![q("s.h")]),
            (b"x \\\n#include \"no2.h\"\n", vec![]),
            (
                b"#define A \\\n  1\n#include \"after.h\"\n",
                vec![q("after.h")],
            ),
            (b"a # b\n#include \"y.h\"\n", vec![q("y.h")]),
            (b"/*c*/ /*d*/ #include \"cc.h\"\n", vec![q("cc.h")]),
            (b"x;/*c*/\n#include \"n.h\"\n", vec![q("n.h")]),
            (b"'a' #include \"no3.h\"\n", vec![]),
            (b"x; // c\n  # include <lc.h>\n", vec![a("lc.h")]),
            (
                b"\"s\\\n#include \\\"no4.h\\\"\"\n#include \"z.h\"\n",
                vec![q("z.h")],
            ),
            (
                b"R\"(\n#include \"no5.h\"\n)\" #include \"no6.h\"\n#include \"r.h\"\n",
                vec![q("r.h")],
            ),
            (b"int x = 1'0'\n#include \"q.h\"\n", vec![q("q.h")]),
            (b"\r\n  #include \"crlf.h\"\r\n", vec![q("crlf.h")]),
            (b"%\\\n:include \"dg.h\"\n", vec![q("dg.h")]),
            (b"#\n#include \"empty.h\"\n", vec![q("empty.h")]),
        ];
        for (src, want) in cases {
            assert_eq!(&incs(src), want, "{}", String::from_utf8_lossy(src));
        }
    }

    #[test]
    fn indentation_of_any_length() {
        for n in 0..40 {
            let mut src = b" \t".repeat(n / 2);
            src.extend_from_slice(&b" ".repeat(n % 2));
            src.extend_from_slice(b"#include \"x.h\"\n");
            assert_eq!(incs(&src), vec![q("x.h")], "{n}");
            assert_eq!(skip_blanks(&src, 0), n);
        }
        assert_eq!(skip_blanks(b"        \x0b", 0), 8);
        assert_eq!(skip_blanks(b"   ", 0), 3);
    }

    #[test]
    fn include_next_and_embed() {
        let s = scan(b"#include_next <stdlib.h>\n#embed \"data.bin\" limit(4)\n");
        assert!(s.includes[0].next && !s.includes[0].embed);
        assert!(s.includes[1].embed);
        assert_eq!(s.includes[1].form, q("data.bin"));
    }

    #[test]
    fn comments() {
        let cases: &[(&[u8], Vec<IncludeForm>)] = &[
            (b"/* #include \"no1.h\" */\n", vec![]),
            (b"// #include \"no2.h\"\n", vec![]),
            (
                b"/*\n#include \"no3.h\"\n*/\n#include \"yes.h\"\n",
                vec![q("yes.h")],
            ),
            (b"/* c */ #include \"a.h\"\n", vec![q("a.h")]),
            (b"/* a\n b */ #include \"a2.h\"\n", vec![q("a2.h")]),
            (
                b"# /* c */ include /* c */ \"a3.h\" /* c */\n",
                vec![q("a3.h")],
            ),
            (b"#include /* multi\nline */ \"a4.h\"\n", vec![q("a4.h")]),
            (b"// line comment \\\n#include \"no4.h\"\n", vec![]),
            (b"x /* \"unterminated */ #include \"no5.h\"\n", vec![]),
            (b"char *s = \"/*\";\n#include \"a5.h\"\n", vec![q("a5.h")]),
            (b"char c = '\"';\n#include \"a6.h\"\n", vec![q("a6.h")]),
            (
                b"int x = 1'000'000; /* x */\n#include \"a7.h\"\n",
                vec![q("a7.h")],
            ),
        ];
        for (src, want) in cases {
            assert_eq!(&incs(src), want, "{}", String::from_utf8_lossy(src));
        }
    }

    #[test]
    fn the_token_before_a_quote_decides_what_it_starts() {
        // Each source opens a block comment or raw string only if the quote before it
        // was lexed as the test expects; the include after tells which.
        let cases: &[(&[u8], bool)] = &[
            // digit separators: the `/*` after them opens a comment
            (b"x = 0x1'ff'00; /*\n#include \"h.h\"\n*/\n", false),
            (b"x = .5'0; /*\n#include \"h.h\"\n*/\n", false),
            (b"x = 1e+5'0; /*\n#include \"h.h\"\n*/\n", false),
            (b"x = a.5'0; /*\n#include \"h.h\"\n*/\n", false),
            // character literals: the `/*` is inside them, the include counts
            (b"x = u8'/*';\n#include \"h.h\"\n", true),
            (b"x = a1'/*';\n#include \"h.h\"\n", true),
            (b"x = e+'/*';\n#include \"h.h\"\n", true),
            (b"x = 1' '; c = '/*';\n#include \"h.h\"\n", true),
            (b"x = 'a''/*';\n#include \"h.h\"\n", true),
            // raw strings only after an exact prefix that is not part of a number
            (b"s = LR\"(\n#include \"h.h\"\n)\";\n", false),
            (b"s = .R\"(\n#include \"h.h\"\n)\";\n", false),
            (b"s = 1R\"(\";\n#include \"h.h\"\n", true),
            (b"s = 1.R\"(\";\n#include \"h.h\"\n", true),
            (b"s = xR\"(\";\n#include \"h.h\"\n", true),
            (b"s = 'R'\"(\";\n#include \"h.h\"\n", true),
        ];
        for (src, found) in cases {
            assert_eq!(
                !incs(src).is_empty(),
                *found,
                "{}",
                String::from_utf8_lossy(src)
            );
        }
    }

    #[test]
    fn continuations() {
        let cases: &[(&[u8], Vec<IncludeForm>)] = &[
            (b"#inc\\\nlude \"a.h\"\n", vec![q("a.h")]),
            (b"#\\\ninclude \\\n \"b.h\"\n", vec![q("b.h")]),
            (b"#include \\\r\n \"crlf.h\"\r\n", vec![q("crlf.h")]),
            (b"int x; \\\n#include \"no.h\"\n", vec![]),
            (b"#define X 1 \\\n#include \"no2.h\"\n", vec![]),
            (b"\\\n#include \"yes.h\"\n", vec![q("yes.h")]),
        ];
        for (src, want) in cases {
            assert_eq!(&incs(src), want, "{}", String::from_utf8_lossy(src));
        }
        let s = scan(b"#define F(a, \\\n b) a ## \\\n b\n");
        assert_eq!(params(&s.defines[0]), Some(vec![&b"a"[..], b"b"]));
        assert_eq!(s.defines[0].body(), b"a ##  b");
    }

    #[test]
    fn raw_strings() {
        let src = b"auto s = R\"x(\n#include \"no.h\"\n)\"\n)x\";\n#include \"yes.h\"\n\
                    auto t = u8R\"(/*)\";\n#include \"yes2.h\"\n\
                    int R = 1; char *u = R\"no-raw\";\n#include \"yes3.h\"\n";
        assert_eq!(incs(src), vec![q("yes.h"), q("yes2.h"), q("yes3.h")]);
        // A backslash-newline inside a raw string is not a splice.
        let src2 = b"auto s = R\"(\\\n#include \"no.h\"\n)\";\n#include \"y.h\"\n";
        assert_eq!(incs(src2), vec![q("y.h")]);
    }

    #[test]
    fn non_utf8_bytes() {
        let src = b"/* \xff\xfe caf\xe9 */\n#include \"\xe9t\xe9.h\"\nchar *s = \"\x80\";\n#define N\xe9 \"v\xff.h\"\n";
        let s = scan(src);
        assert_eq!(
            s.includes[0].form,
            IncludeForm::Quote(b"\xe9t\xe9.h".to_vec())
        );
        assert_eq!(s.defines[0].name(), b"N\xe9");
        assert_eq!(s.defines[0].body(), b"\"v\xff.h\"");
    }

    #[test]
    fn defines_and_undefs() {
        let s = scan(
            b"#define A\n#define B 1 // c\n#define F(x,  y) x##y\n#define G (x)\n\
              #define V(fmt, ...) fmt __VA_ARGS__\n#define W(args...) args\n\
              #define U \"http://x\"\n#undef A\n#define 1bad\n",
        );
        let d = &s.defines;
        assert_eq!(d.len(), 7);
        assert_eq!((d[0].name(), d[0].body()), (&b"A"[..], &b""[..]));
        assert_eq!(d[1].body(), b"1");
        assert_eq!(params(&d[2]), Some(vec![&b"x"[..], b"y"]));
        assert_eq!((d[2].name(), d[2].body()), (&b"F"[..], &b"x##y"[..]));
        assert_eq!(params(&d[3]), None);
        assert_eq!(d[3].body(), b"(x)");
        assert!(d[4].variadic());
        assert_eq!(params(&d[4]), Some(vec![&b"fmt"[..], b"__VA_ARGS__"]));
        assert_eq!(d[4].body(), b"fmt __VA_ARGS__");
        assert!(d[5].variadic());
        assert_eq!(params(&d[5]), Some(vec![&b"args"[..]]));
        assert_eq!(d[6].body(), b"\"http://x\"");
        let empty = define(b"E() e").unwrap();
        assert_eq!((params(&empty), empty.body()), (Some(vec![]), &b"e"[..]));
        assert_eq!(s.undefs, vec![b"A".to_vec()]);
    }

    #[test]
    fn conditional_branches_of_defines() {
        let s = scan(
            b"#ifndef G\n#define G\n#if A\n#define X 1\n#elif B\n#define X 2\n#else\n\
              #define X 3\n#endif\n#ifdef C\n#define Y 1\n#endif\n#endif\n#define Z\n",
        );
        let c: Vec<_> = s.defines.iter().map(|d| d.cond.to_vec()).collect();
        assert_eq!(
            c,
            vec![
                vec![(0, 0)],
                vec![(0, 0), (1, 0)],
                vec![(0, 0), (1, 1)],
                vec![(0, 0), (1, 2)],
                vec![(0, 0), (2, 0)],
                vec![],
            ]
        );
    }

    #[test]
    fn has_include() {
        let s = scan(
            b"#if __has_include(<optional>) && __has_include ( \"cfg.h\" )\n#endif\n\
              #elif defined(X) || __has_include_next(<n.h>) || __has_include(HDR)\n",
        );
        let f: Vec<_> = s
            .includes
            .iter()
            .map(|i| (i.form.clone(), i.next))
            .collect();
        assert_eq!(
            f,
            vec![
                (a("optional"), false),
                (q("cfg.h"), false),
                (a("n.h"), true),
                (e("HDR"), false)
            ]
        );
    }

    /// A directive line taken as it is (no backslash, `//` or `/*`) is the line the
    /// general path collects; the others are not taken so.
    #[test]
    fn plain_lines_are_their_own_logical_line() {
        let plain: [&[u8]; 6] = [
            b"include \"db/dbformat.h\"",
            b"include <bits/c++config.h>",
            b"define RATIO 1/2",
            b"define S \"a/b\" 'c'",
            b"if X / 2 > 1\r",
            b"define Q \"unterminated",
        ];
        for line in plain {
            assert!(plain_line(line), "{}", String::from_utf8_lossy(line));
            let mut collected = Vec::new();
            let end = collect_directive(line, 0, &mut collected);
            assert_eq!((end, &collected[..]), (line.len(), line));
        }
        let general: [&[u8]; 4] = [
            b"define U \"http://x\"",
            b"if A /* B */",
            b"endif // A",
            b"define E '\\''",
        ];
        for line in general {
            assert!(!plain_line(line), "{}", String::from_utf8_lossy(line));
        }
    }

    /// A definition's parts come from its file's shared text, split when asked for.
    #[test]
    fn definitions_share_their_file_text() {
        let s = scan(b"#define A(x, y ) x y\n#define B()  \n#define C( a, ...) a\n#define D (x)\n#define 9X\n#define E(x x\n");
        let d = &s.defines;
        assert_eq!(d.len(), 4);
        assert!(d.iter().all(|x| Arc::ptr_eq(&x.text, &d[0].text)));
        assert_eq!(params(&d[0]), Some(vec![&b"x"[..], b"y"]));
        assert_eq!((d[0].body(), d[0].variadic()), (&b"x y"[..], false));
        assert_eq!((params(&d[1]), d[1].body()), (Some(vec![]), &b""[..]));
        assert_eq!(params(&d[2]), Some(vec![&b"a"[..], b"__VA_ARGS__"]));
        assert!(d[2].variadic());
        assert_eq!(
            (d[3].name(), params(&d[3]), d[3].body()),
            (&b"D"[..], None, &b"(x)"[..])
        );
        assert_eq!(define(b"N 1"), Some(Define::alone(b"N 1").unwrap()));
        assert_eq!(
            define(b" M(a) a ").map(|m| m.body().to_vec()),
            Some(b"a".to_vec())
        );
    }
}
