//! Compile-command parsing for gcc and clang (spec 5.1, 5.2; improved): argv bytes in,
//! a typed [`CompileCommand`] out.
//!
//! Differences from `parse_command.py`, all toward GCC's real behaviour: `--sysroot X`
//! with a space; `=`/`$SYSROOT` prefixes of `-I`, `-iquote`, `-isystem`, `-idirafter`;
//! longest-match of glued options (`-iwithprefixbeforeX`); `-I-` (earlier `-I` dirs
//! become quote dirs and the including file's dir is not searched); `-Xclang`,
//! `-Xpreprocessor` and `-Wp,` payloads parsed as preprocessor options; `-D=x` and
//! `-DFOO` (as `FOO=1`) handled; `.cp`, `.c++`, `.S` sources accepted; `-include-pch`
//! refused (not covered) rather than misread; an empty argument refused. Unknown options
//! are ignored: if one consumed the next element, that element becomes a second file
//! name and the request is refused, which is the conservative outcome.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A `-D` definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CmdDefine {
    /// Left of `=` (may hold a parameter list: `F(x)`).
    pub lhs: Vec<u8>,
    /// Right of the first `=`, `1` when there is none.
    pub value: Vec<u8>,
}

/// One compile command, as the analysis needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileCommand {
    /// argv[0].
    pub compiler: Vec<u8>,
    /// The translation unit as spelled.
    pub source: Vec<u8>,
    /// The language for the probe (`c`, `c++`, `objective-c`, `objective-c++`).
    pub language: Vec<u8>,
    /// `-iquote` dirs (and `-I` dirs before `-I-`), normalised.
    pub quote_dirs: Vec<Vec<u8>>,
    /// `-I` dirs (and `-iwithprefixbefore`, `-F` globs), normalised.
    pub angle_dirs: Vec<Vec<u8>>,
    /// `-isystem`-like dirs searched before the compiler's defaults.
    pub system_dirs: Vec<Vec<u8>>,
    /// `-idirafter`/`-iwithprefix` dirs searched after the defaults.
    pub after_dirs: Vec<Vec<u8>>,
    /// `-include`, `-imacros` and `-Wa,…s` files, in command-line order.
    pub include_files: Vec<Vec<u8>>,
    /// `-D` definitions.
    pub defines: Vec<CmdDefine>,
    /// `-U` names.
    pub undefs: Vec<Vec<u8>>,
    /// `-nostdinc`.
    pub nostdinc: bool,
    /// `-I-` was given: quote includes do not look in the including file's dir.
    pub no_current_dir: bool,
    /// Flags passed to the compiler probe (they change its default dirs).
    pub probe_flags: Vec<Vec<u8>>,
    /// `-o`.
    pub output: Option<Vec<u8>>,
}

/// A parse failure (the request is not covered).
pub type ParseError = String;

/// Removes leading `./` runs and trailing `/`s; `.` becomes `""` (the cwd); `/` stays.
pub fn normalize_dir(d: &[u8]) -> Vec<u8> {
    let mut s = d;
    while let Some(r) = s.strip_prefix(b"./") {
        s = r;
        while let Some(r) = s.strip_prefix(b"/") {
            s = r;
        }
    }
    while s.len() > 1 && s.ends_with(b"/") {
        s = &s[..s.len() - 1];
    }
    if s == b"." {
        return Vec::new();
    }
    s.to_vec()
}

fn lang_of_suffix(src: &[u8]) -> Option<&'static [u8]> {
    let dot = src.iter().rposition(|&c| c == b'.')?;
    if src[dot..].contains(&b'/') {
        return None;
    }
    Some(match &src[dot + 1..] {
        b"c" | b"i" | b"S" | b"sx" => b"c",
        b"cc" | b"cp" | b"cpp" | b"cxx" | b"c++" | b"C" | b"CPP" | b"CXX" | b"ii" | b"cppm"
        | b"ixx" | b"hpp" | b"hh" | b"hxx" | b"H" => b"c++",
        b"m" | b"mi" => b"objective-c",
        b"mm" | b"M" | b"mii" => b"objective-c++",
        b"h" => b"c",
        _ => return None,
    })
}

/// The probe language for a `-x` value.
fn lang_of_x(x: &[u8]) -> Option<&'static [u8]> {
    Some(match x {
        b"c" | b"c-header" | b"cpp-output" | b"assembler-with-cpp" => b"c",
        b"c++" | b"c++-header" | b"c++-cpp-output" | b"c++-system-header" | b"c++-user-header"
        | b"c++-module" => b"c++",
        b"objective-c" | b"objective-c-header" | b"objective-c-cpp-output" => b"objective-c",
        b"objective-c++" | b"objective-c++-header" | b"objective-c++-cpp-output" => {
            b"objective-c++"
        }
        _ => return None,
    })
}

/// Options whose argument is the next element (or glued); the action to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Act {
    Angle,
    Quote,
    System,
    After,
    Include,
    Define,
    Undef,
    Output,
    Lang,
    Prefix,
    WithPrefix,
    WithPrefixBefore,
    Sysroot,
    ISysroot,
    WithSysroot,
    Framework,
    Probe,
    ProbeGlued,
    Refuse,
    Ignore,
}

/// Prefix-matched options that take an argument, longest names first where one is a
/// prefix of another.
const WITH_ARG: &[(&str, Act)] = &[
    ("-iwithprefixbefore", Act::WithPrefixBefore),
    ("-iwithprefix", Act::WithPrefix),
    ("-iwithsysroot", Act::WithSysroot),
    ("-include-pch", Act::Refuse),
    ("-include", Act::Include),
    ("-imacros", Act::Include),
    ("-idirafter", Act::After),
    ("-iprefix", Act::Prefix),
    ("-isysroot", Act::ISysroot),
    ("-isystem-after", Act::After),
    ("-isystem", Act::System),
    ("-iquote", Act::Quote),
    ("-imultilib", Act::Probe),
    ("-iframework", Act::Ignore),
    ("-cxx-isystem", Act::System),
    ("-stdlib++-isystem", Act::Probe),
    ("-ivfsoverlay", Act::Refuse),
    ("--include-directory-after", Act::After),
    ("--include-directory", Act::Angle),
    ("--include-prefix", Act::Prefix),
    ("--include-with-prefix-before", Act::WithPrefixBefore),
    ("--include-with-prefix-after", Act::WithPrefix),
    ("--include-with-prefix", Act::WithPrefix),
    ("--include", Act::Include),
    ("--imacros", Act::Include),
    ("--define-macro", Act::Define),
    ("--undefine-macro", Act::Undef),
    ("--output", Act::Output),
    ("--language", Act::Lang),
    ("--sysroot", Act::Sysroot),
    ("--gcc-toolchain", Act::Probe),
    ("-gcc-toolchain", Act::Probe),
    ("--target", Act::Probe),
    ("-target", Act::Probe),
    ("-resource-dir", Act::Probe),
    ("--config", Act::Probe),
    ("-specs", Act::Probe),
    ("--specs", Act::Probe),
    ("-MF", Act::Ignore),
    ("-MT", Act::Ignore),
    ("-MQ", Act::Ignore),
    ("-MJ", Act::Ignore),
    ("-arch", Act::Ignore),
    ("-aux-info", Act::Ignore),
    ("--param", Act::Ignore),
    ("-Xassembler", Act::Ignore),
    ("-Xlinker", Act::Ignore),
    ("-Xcuda-fatbinary", Act::Ignore),
    ("-Xcuda-ptxas", Act::Ignore),
    ("-Xopenmp-target", Act::Ignore),
    ("-mllvm", Act::Ignore),
    ("-dependency-file", Act::Ignore),
    ("-dependency-dot", Act::Ignore),
    ("-serialize-diagnostics", Act::Ignore),
    ("-framework", Act::Ignore),
    ("-x", Act::Lang),
    ("-o", Act::Output),
    ("-I", Act::Angle),
    ("-D", Act::Define),
    ("-U", Act::Undef),
    ("-F", Act::Framework),
    ("-B", Act::ProbeGlued),
    ("-A", Act::Ignore),
    ("-L", Act::Ignore),
    ("-l", Act::Ignore),
    ("-u", Act::Ignore),
    ("-T", Act::Ignore),
    ("-V", Act::Ignore),
    ("-b", Act::Ignore),
    ("-z", Act::Ignore),
];

/// The [`WITH_ARG`] entry `a` starts with, if any (the first in table order). Entries
/// are indexed by their second byte: most arguments (`-W…`, `-O…`) skip the scan.
fn with_arg(a: &[u8]) -> Option<&'static (&'static str, Act)> {
    static BY_SECOND: std::sync::OnceLock<Vec<Vec<usize>>> = std::sync::OnceLock::new();
    let index = BY_SECOND.get_or_init(|| {
        let mut v = vec![Vec::new(); 256];
        for (k, (n, _)) in WITH_ARG.iter().enumerate() {
            v[usize::from(n.as_bytes()[1])].push(k);
        }
        v
    });
    let second = *a.get(1)?;
    index[usize::from(second)]
        .iter()
        .map(|&k| &WITH_ARG[k])
        .find(|(n, _)| a.starts_with(n.as_bytes()))
}

/// Options that must match exactly (no glued form), and their effect.
fn exact_flag(a: &[u8]) -> Option<fn(&mut Parser, &[u8])> {
    Some(match a {
        b"-nostdinc" | b"--no-standard-includes" => |p, _| {
            p.cmd.nostdinc = true;
            p.cmd.probe_flags.push(b"-nostdinc".to_vec());
        },
        b"-I-" | b"--include-barrier" => |p, _| {
            let before = std::mem::take(&mut p.cmd.angle_dirs);
            p.cmd.quote_dirs.extend(before);
            p.cmd.no_current_dir = true;
        },
        b"-nostdinc++"
        | b"-nostdlibinc"
        | b"-nobuiltininc"
        | b"-no-canonical-prefixes"
        | b"-ffreestanding"
        | b"-fno-builtin" => |p, a| {
            p.cmd.probe_flags.push(a.to_vec());
        },
        b"-undef" | b"-c" | b"-E" | b"-S" | b"-v" | b"-w" | b"-g" | b"-pipe" | b"-MD" | b"-MMD"
        | b"-MP" | b"-MG" | b"-M" | b"-MM" | b"-P" | b"-C" | b"-CC" | b"-H" => |_, _| {},
        _ => return None,
    })
}

struct Parser {
    cmd: CompileCommand,
    files: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    lang: Option<Vec<u8>>,
    prefix: Vec<u8>,
    sysroot: Option<Vec<u8>>,
    isysroot: Option<Vec<u8>>,
    /// Dirs whose `=` prefix waits for the sysroot: (list id, index).
    pending_eq: Vec<(u8, usize)>,
}

/// Parses argv (argv[0] is the compiler).
pub fn parse(argv: &[Vec<u8>]) -> Result<CompileCommand, ParseError> {
    if argv.len() < 2 {
        return Err("too few arguments".into());
    }
    let mut p = Parser {
        cmd: CompileCommand {
            compiler: argv[0].clone(),
            ..Default::default()
        },
        files: Vec::new(),
        lang: None,
        prefix: Vec::new(),
        sysroot: None,
        isysroot: None,
        pending_eq: Vec::new(),
    };
    p.args(&argv[1..], false)?;
    p.finish()
}

impl Parser {
    fn args(&mut self, args: &[Vec<u8>], preprocessor_only: bool) -> Result<(), ParseError> {
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            i += 1;
            if a.is_empty() {
                return Err("empty argument".into());
            }
            if a[0] != b'-' || a.as_slice() == b"-" {
                if preprocessor_only {
                    continue;
                }
                self.files.push((a.clone(), self.lang.clone()));
                continue;
            }
            if let Some(f) = exact_flag(a) {
                f(self, a);
                continue;
            }
            if let Some(rest) = a.strip_prefix(b"-Wp,") {
                let sub: Vec<Vec<u8>> = rest.split(|&c| c == b',').map(<[u8]>::to_vec).collect();
                self.wp(&sub)?;
                continue;
            }
            if let Some(rest) = a.strip_prefix(b"-Wa,") {
                for part in rest.split(|&c| c == b',') {
                    let part = part
                        .strip_prefix(b"[")
                        .and_then(|p| p.strip_suffix(b"]"))
                        .unwrap_or(part);
                    if part.ends_with(b".s")
                        && part.len() > 2
                        && part
                            .iter()
                            .all(|&c| c.is_ascii_alphanumeric() || b"/_.".contains(&c))
                    {
                        self.cmd.include_files.push(part.to_vec());
                    }
                }
                continue;
            }
            if a.as_slice() != b"-mllvm"
                && (a.starts_with(b"-m")
                    || a.starts_with(b"-std=")
                    || a.starts_with(b"--std=")
                    || a.starts_with(b"-stdlib=")
                    || a.starts_with(b"--stdlib=")
                    || a.starts_with(b"--driver-mode="))
            {
                self.cmd.probe_flags.push(a.clone());
                continue;
            }
            if matches!(a.as_slice(), b"-Xclang" | b"-Xpreprocessor") {
                // Consecutive `-Xclang V` pairs form one preprocessor argv.
                let mut payload = Vec::new();
                while let Some(v) = args.get(i) {
                    payload.push(v.clone());
                    i += 1;
                    if args.get(i) == Some(a) {
                        i += 1;
                    } else {
                        break;
                    }
                }
                if payload.is_empty() {
                    return Err(format!(
                        "no argument found for option '{}'",
                        String::from_utf8_lossy(a)
                    ));
                }
                self.args(&payload, true)?;
                continue;
            }
            if a.starts_with(b"-Xarch_") {
                // The next element is an option for one architecture only.
                i += 1;
                continue;
            }
            let Some((name, act)) = with_arg(a) else {
                continue; // Unknown or argument-less option: ignored.
            };
            let glued = &a[name.len()..];
            // Long options take `--opt=value`; `-opt=value` is glued as is for `-I=dir`.
            let value: Vec<u8> = if glued.is_empty() {
                match args.get(i) {
                    Some(v) => {
                        i += 1;
                        v.clone()
                    }
                    None => return Err(format!("no argument found for option '{name}'")),
                }
            } else if name.starts_with("--") || matches!(*act, Act::Probe) && name.len() > 2 {
                match glued.strip_prefix(b"=") {
                    Some(v) => v.to_vec(),
                    None => continue, // A different, longer option.
                }
            } else {
                glued.to_vec()
            };
            self.apply(*act, name, value, glued.is_empty())?;
        }
        Ok(())
    }

    /// `-Wp,` payloads: preprocessor options, where `-MD`/`-MMD` take a file.
    fn wp(&mut self, sub: &[Vec<u8>]) -> Result<(), ParseError> {
        let mut j = 0;
        let mut rest = Vec::new();
        while j < sub.len() {
            if matches!(sub[j].as_slice(), b"-MD" | b"-MMD") {
                j += 2;
                continue;
            }
            rest.push(sub[j].clone());
            j += 1;
        }
        self.args(&rest, true)
    }

    fn apply(
        &mut self,
        act: Act,
        name: &str,
        value: Vec<u8>,
        separate: bool,
    ) -> Result<(), ParseError> {
        match act {
            Act::Angle => self.dir(0, &value),
            Act::Quote => self.dir(1, &value),
            Act::System => self.dir(2, &value),
            Act::After => self.dir(3, &value),
            Act::Include => self.cmd.include_files.push(value),
            Act::Define => {
                let (lhs, v) = match value.iter().position(|&c| c == b'=') {
                    Some(k) => (value[..k].to_vec(), value[k + 1..].to_vec()),
                    None => (value.clone(), b"1".to_vec()),
                };
                if !lhs.is_empty() {
                    self.cmd.defines.push(CmdDefine { lhs, value: v });
                }
            }
            Act::Undef => self.cmd.undefs.push(value),
            Act::Output => self.cmd.output = Some(value),
            Act::Lang => {
                self.lang = if value.as_slice() == b"none" {
                    None
                } else {
                    Some(value)
                }
            }
            Act::Prefix => self.prefix = value,
            Act::WithPrefix => {
                let mut d = self.prefix.clone();
                d.extend_from_slice(&value);
                self.dir(3, &d);
            }
            Act::WithPrefixBefore => {
                let mut d = self.prefix.clone();
                d.extend_from_slice(&value);
                self.dir(0, &d);
            }
            Act::Sysroot => {
                self.cmd
                    .probe_flags
                    .push([b"--sysroot=".as_slice(), value.as_slice()].concat());
                self.sysroot = Some(value);
            }
            Act::ISysroot => {
                self.cmd.probe_flags.push(b"-isysroot".to_vec());
                self.cmd.probe_flags.push(value.clone());
                self.isysroot = Some(value);
            }
            Act::WithSysroot => {
                let mut d = b"=".to_vec();
                d.extend_from_slice(&value);
                self.dir(2, &d);
            }
            Act::Framework => {
                let pattern = Path::new(std::ffi::OsStr::from_bytes(&value));
                if let Ok(rd) = std::fs::read_dir(pattern) {
                    let mut found: Vec<Vec<u8>> = rd
                        .flatten()
                        .map(|e| e.path().join("Headers"))
                        .filter(|p| p.is_dir())
                        .map(|p| p.as_os_str().as_bytes().to_vec())
                        .collect();
                    found.sort();
                    for f in found {
                        self.dir(0, &f);
                    }
                }
            }
            Act::Probe => {
                if separate {
                    self.cmd.probe_flags.push(name.as_bytes().to_vec());
                    self.cmd.probe_flags.push(value);
                } else {
                    self.cmd
                        .probe_flags
                        .push([name.as_bytes(), b"=", value.as_slice()].concat());
                }
            }
            Act::ProbeGlued => self
                .cmd
                .probe_flags
                .push([name.as_bytes(), value.as_slice()].concat()),
            Act::Refuse => return Err(format!("{name} is not supported")),
            Act::Ignore => {}
        }
        Ok(())
    }

    fn dir(&mut self, list: u8, d: &[u8]) {
        let target = match list {
            0 => &mut self.cmd.angle_dirs,
            1 => &mut self.cmd.quote_dirs,
            2 => &mut self.cmd.system_dirs,
            _ => &mut self.cmd.after_dirs,
        };
        if d.starts_with(b"=") || d.starts_with(b"$SYSROOT") {
            self.pending_eq.push((list, target.len()));
        }
        target.push(d.to_vec());
    }

    fn finish(mut self) -> Result<CompileCommand, ParseError> {
        // Apply `=` / `$SYSROOT` prefixes now that the sysroot is known.
        let root = self
            .isysroot
            .clone()
            .or(self.sysroot.clone())
            .unwrap_or_default();
        for (list, k) in std::mem::take(&mut self.pending_eq) {
            let target = match list {
                0 => &mut self.cmd.angle_dirs,
                1 => &mut self.cmd.quote_dirs,
                2 => &mut self.cmd.system_dirs,
                _ => &mut self.cmd.after_dirs,
            };
            if let Some(d) = target.get_mut(k) {
                let rest = d
                    .strip_prefix(b"=")
                    .or_else(|| d.strip_prefix(b"$SYSROOT"))
                    .unwrap_or(d)
                    .to_vec();
                *d = [root.as_slice(), rest.as_slice()].concat();
            }
        }
        for l in [
            &mut self.cmd.quote_dirs,
            &mut self.cmd.angle_dirs,
            &mut self.cmd.system_dirs,
            &mut self.cmd.after_dirs,
        ] {
            for d in l.iter_mut() {
                *d = normalize_dir(d);
            }
        }
        if self.files.len() != 1 {
            let list: Vec<String> = self
                .files
                .iter()
                .map(|(f, _)| format!("'{}'", String::from_utf8_lossy(f)))
                .collect();
            return Err(format!(
                "could not locate name of translation unit: [{}]",
                list.join(", ")
            ));
        }
        let (source, lang) = self.files.pop().expect("one file");
        let language = match &lang {
            Some(x) => lang_of_x(x).ok_or_else(|| {
                format!("unsupported language '-x {}'", String::from_utf8_lossy(x))
            })?,
            None => lang_of_suffix(&source).ok_or_else(|| {
                format!(
                    "for source file '{}': unrecognized filename extension",
                    String::from_utf8_lossy(&source)
                )
            })?,
        };
        self.cmd.source = source;
        self.cmd.language = language.to_vec();
        Ok(self.cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<Vec<u8>> {
        s.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    fn b(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn table() {
        struct Case {
            argv: &'static str,
            quote: &'static [&'static str],
            angle: &'static [&'static str],
            system: &'static [&'static str],
            after: &'static [&'static str],
            includes: &'static [&'static str],
            lang: &'static str,
        }
        let cases = [
            Case {
                argv: "gcc -c x.c -o x.o",
                quote: &[],
                angle: &[],
                system: &[],
                after: &[],
                includes: &[],
                lang: "c",
            },
            Case {
                argv: "gcc -Ia -I b -iquote q -iquoteq2 -isystem s -isystems2 -idirafter z -c x.cc",
                quote: &["q", "q2"],
                angle: &["a", "b"],
                system: &["s", "s2"],
                after: &["z"],
                includes: &[],
                lang: "c++",
            },
            Case {
                argv: "g++ -I./a/ -I. -I/ -I.//b// -include f.h -includeg.h -imacros m.h x.cp",
                quote: &[],
                angle: &["a", "", "/", "b"],
                system: &[],
                after: &[],
                includes: &["f.h", "g.h", "m.h"],
                lang: "c++",
            },
            Case {
                argv: "gcc --sysroot /sr -I=/inc -isystem $SYSROOT/si -iquote=q x.c",
                quote: &["/srq"],
                angle: &["/sr/inc"],
                system: &["/sr/si"],
                after: &[],
                includes: &[],
                lang: "c",
            },
            Case {
                argv:
                    "gcc -iprefix /p/ -iwithprefixbefore b -iwithprefix a -iwithprefixbeforec x.c",
                quote: &[],
                angle: &["/p/b", "/p/c"],
                system: &[],
                after: &["/p/a"],
                includes: &[],
                lang: "c",
            },
            Case {
                argv: "clang -Xclang -include -Xclang xc.h -Wp,-Iwp,-MD,dep.d -x c++ y.c",
                quote: &[],
                angle: &["wp"],
                system: &[],
                after: &[],
                includes: &["xc.h"],
                lang: "c++",
            },
            Case {
                argv: "gcc -Ia -I- -Ib x.m -MF d -MT t -MQ q -o out.o",
                quote: &["a"],
                angle: &["b"],
                system: &[],
                after: &[],
                includes: &[],
                lang: "objective-c",
            },
            Case {
                argv: "gcc -Wa,arch/x86/macros.s -Wa,-gdwarf x.S",
                quote: &[],
                angle: &[],
                system: &[],
                after: &[],
                includes: &["arch/x86/macros.s"],
                lang: "c",
            },
            Case {
                argv: "gcc --include-directory=ld --include=li.h -x c-header h.h -x none",
                quote: &[],
                angle: &["ld"],
                system: &[],
                after: &[],
                includes: &["li.h"],
                lang: "c",
            },
        ];
        for c in cases {
            let cmd = parse(&argv(c.argv)).unwrap_or_else(|e| panic!("{}: {e}", c.argv));
            assert_eq!(cmd.quote_dirs, b(c.quote), "{}", c.argv);
            assert_eq!(cmd.angle_dirs, b(c.angle), "{}", c.argv);
            assert_eq!(cmd.system_dirs, b(c.system), "{}", c.argv);
            assert_eq!(cmd.after_dirs, b(c.after), "{}", c.argv);
            assert_eq!(cmd.include_files, b(c.includes), "{}", c.argv);
            assert_eq!(cmd.language, c.lang.as_bytes(), "{}", c.argv);
        }
    }

    #[test]
    fn defines() {
        let cmd = parse(&argv("gcc -DA -DB=2 -D C=x=y -DF(x)=#x -D=x -DE= -UA x.c")).unwrap();
        let d: Vec<(String, String)> = cmd
            .defines
            .iter()
            .map(|d| {
                (
                    String::from_utf8_lossy(&d.lhs).into_owned(),
                    String::from_utf8_lossy(&d.value).into_owned(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "2"),
            ("C", "x=y"),
            ("F(x)", "#x"),
            ("E", ""),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(d, want);
        assert_eq!(cmd.undefs, b(&["A"]));
    }

    #[test]
    fn probe_flags() {
        let cmd = parse(&argv(
            "clang -target aarch64-linux-gnu --sysroot=/sr -m32 -std=c++17 -stdlib=libc++ \
             -nostdinc++ -B/opt/bin -isysroot /isr -mllvm -foo x.cc",
        ))
        .unwrap();
        assert_eq!(
            cmd.probe_flags,
            b(&[
                "-target",
                "aarch64-linux-gnu",
                "--sysroot=/sr",
                "-m32",
                "-std=c++17",
                "-stdlib=libc++",
                "-nostdinc++",
                "-B/opt/bin",
                "-isysroot",
                "/isr",
            ])
        );
        assert!(parse(&argv("gcc -nostdinc x.c")).unwrap().nostdinc);
    }

    #[test]
    fn failures() {
        for bad in [
            "gcc",
            "gcc a.c b.c",
            "gcc -c",
            "gcc x.xyz",
            "gcc -I",
            "gcc -include-pch p.pch x.c",
            "gcc -x fortran x.c",
        ] {
            assert!(parse(&argv(bad)).is_err(), "{bad}");
        }
        assert!(parse(&[b"gcc".to_vec(), b"".to_vec(), b"x.c".to_vec()]).is_err());
        // Non-UTF-8 arguments are fine.
        let cmd = parse(&[b"gcc".to_vec(), b"-I\xff".to_vec(), b"\xe9.c".to_vec()]).unwrap();
        assert_eq!(cmd.source, b"\xe9.c".to_vec());
        assert_eq!(cmd.angle_dirs, vec![b"\xff".to_vec()]);
    }

    #[test]
    fn normalization() {
        for (i, o) in [
            ("./a/", "a"),
            ("././a", "a"),
            (".", ""),
            ("/", "/"),
            ("a//", "a"),
            ("../x", "../x"),
        ] {
            assert_eq!(normalize_dir(i.as_bytes()), o.as_bytes(), "{i}");
        }
    }
}
