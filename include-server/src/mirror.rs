//! The mirror: what one generation's client root holds, and the reply built from it.
//!
//! For a [`Closure`] the mirror writes, under the generation's client root `R`:
//! - `R + realpath + ".lzo"`: the LZO1X stream of the file's exact bytes, or
//!   `".lzo.abs"` with a `#line 1 "<spelling>"\n` prefix for files reached through an
//!   absolute search directory (spec 4.4, 4.5);
//! - system-directory links `R + S -> "../" x (20 + slashes in S) + S[1..]` (spec 4.8);
//! - the shadow tree (spec 4.6): for every textual path the analysis used, each
//!   symlinked component becomes a link at the real location of its parent, pointing to
//!   the component's absolute client realpath, and every directory the path passes
//!   through is created and recorded as must-exist;
//! - a zero-length `forcing_technique_271828` in each must-exist directory (spec 4.7),
//!   unless forcing is disabled.
//!
//! A reply lists the closure's files, then every system link, shadow link and forcing
//! file of the generation so far (cumulative, as the Python server does), each once.
//! Everything a reply lists exists, complete, before the reply is returned: compressed
//! files are written to a temporary name and renamed, under a per-file lock so that two
//! requests racing on the same file both wait for the one complete copy.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::analysis::closure::Summary;
use crate::analysis::fscache::FsCache;
use crate::analysis::{Closure, ClosureFile};
use crate::client_root::ClientRoot;
use crate::lzo;
use roaring::RoaringBitmap;

/// The name of forcing files; shared with the client's `--scan-includes`.
pub const FORCING_FILE: &str = "forcing_technique_271828";

/// Why a reply could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    /// A closure file could not be read.
    #[error("cannot read '{}': {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// Something under the client root could not be written.
    #[error("cannot write '{}': {error}", path.display())]
    Write {
        /// What was being written.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// A closure file cannot be shipped (too large, compressor failure).
    #[error("cannot compress '{}': {error}", path.display())]
    Compress {
        /// The file.
        path: PathBuf,
        /// Why.
        error: lzo::LzoError,
    },
}

impl MirrorError {
    /// A short stable name for counters and `stats.json`.
    pub fn reason(&self) -> &'static str {
        match self {
            MirrorError::Read { .. } => "unreadable_file",
            MirrorError::Write { .. } => "mirror_error",
            MirrorError::Compress { .. } => "compress_error",
        }
    }
}

/// One built reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// Absolute paths under the client root, each once (shared with the mirror's
    /// records: a warm reply copies no path).
    pub paths: Vec<Arc<Path>>,
    /// Files this request compressed (the others were compressed earlier).
    pub files_compressed: u64,
    /// Bytes of input those files had.
    pub bytes_read: u64,
    /// Bytes of LZO output they produced.
    pub bytes_written: u64,
}

/// Counters of one mirror, cumulative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MirrorStats {
    /// Files compressed.
    pub files_compressed: u64,
    /// Compressions answered by an earlier one.
    pub compression_hits: u64,
    /// Input bytes compressed.
    pub bytes_read: u64,
    /// LZO bytes written.
    pub bytes_written: u64,
}

/// One generation's client root and everything created under it.
#[derive(Debug)]
pub struct Mirror {
    root: ClientRoot,
    force_dirs: bool,
    shadow: Mutex<Shadow>,
    /// Realpaths of the directories on the way to shadowed paths, for closures that do
    /// not bring the analysis's ([`crate::analysis::ClosureIds::fs`]).
    fs: FsCache,
    compressed: Mutex<HashMap<PathBuf, Arc<Mutex<Written>>>>,
    /// The `#line` spelling of each `.lzo.abs` output written, and whether it is the one
    /// a request's source gave ([`Mirror::own_source_line`]).
    lines: Mutex<HashMap<PathBuf, (PathBuf, bool)>>,
    files_compressed: AtomicU64,
    compression_hits: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

/// Whether a compressed output is written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum Written {
    #[default]
    No,
    /// Compressed by [`Mirror::compress_ahead`], to be written by the reply that lists it
    /// (not a hit for it): the reply's shadow-tree walk makes its directory first.
    Ahead(Vec<u8>),
    Yes,
}

/// The shadow-tree state of a generation (spec 4.6, 4.8).
#[derive(Debug, Default)]
struct Shadow {
    /// The analysis tables the id sets below refer to ([`Closures::serial`]).
    ids_serial: u64,
    /// Text ids whose paths were walked.
    done_texts: RoaringBitmap,
    /// File ids whose realpaths were walked.
    done_files: RoaringBitmap,
    /// Closures walked whole, by address.
    done_summaries: HashMap<usize, Arc<Summary>>,
    /// Compressed outputs by file id (files under system links are not here).
    outs: HashMap<u32, Arc<Path>>,
    /// The system dirs of the last closure, all linked.
    last_batch: Vec<PathBuf>,
    /// Bumped whenever a link, system link or must-exist directory is added or removed.
    version: u64,
    /// The reply's tail (system links, shadow links, forcing files) at `version`.
    rest: Option<(u64, Arc<Vec<Arc<Path>>>)>,
    /// Textual paths already processed (by their bytes: hashing them is much cheaper
    /// than `Path`'s component-wise hash).
    visited: HashSet<Box<[u8]>>,
    /// Directories under the root known to exist.
    existing: HashSet<PathBuf>,
    /// System dirs linked so far (client paths) and their links, in creation order.
    system_dirs: Vec<PathBuf>,
    system_links: Vec<PathBuf>,
    /// Shadow links, in creation order.
    links: Vec<PathBuf>,
    /// Must-exist directories (under the root), in creation order.
    must_exist: Vec<PathBuf>,
}

impl Shadow {
    /// Starts the id sets over if they belong to other tables.
    fn use_table(&mut self, serial: u64) {
        if self.ids_serial != serial {
            self.ids_serial = serial;
            self.forget_ids();
        }
    }

    fn forget_ids(&mut self) {
        self.done_texts.clear();
        self.done_files.clear();
        self.done_summaries.clear();
        self.outs.clear();
    }

    /// Every system link, shadow link and (with `force_dirs`) forcing file so far, each
    /// once, in creation order.
    fn rest(&mut self, force_dirs: bool) -> Arc<Vec<Arc<Path>>> {
        if let Some((v, r)) = &self.rest {
            if *v == self.version {
                return r.clone();
            }
        }
        let forcing = self
            .must_exist
            .iter()
            .filter(|_| force_dirs)
            .map(|d| d.join(FORCING_FILE));
        let mut seen = HashSet::default();
        let list: Vec<Arc<Path>> = self
            .system_links
            .iter()
            .chain(self.links.iter())
            .cloned()
            .chain(forcing)
            .filter(|p| seen.insert(p.clone()))
            .map(Arc::from)
            .collect();
        let list = Arc::new(list);
        self.rest = Some((self.version, list.clone()));
        list
    }
}

impl Mirror {
    /// A mirror over a freshly created root.
    pub fn new(root: ClientRoot, force_dirs: bool) -> Mirror {
        Mirror {
            root,
            force_dirs,
            shadow: Mutex::new(Shadow::default()),
            fs: FsCache::default(),
            compressed: Mutex::new(HashMap::default()),
            lines: Mutex::new(HashMap::default()),
            files_compressed: AtomicU64::new(0),
            compression_hits: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
        }
    }

    /// The generation's root.
    pub fn root(&self) -> &ClientRoot {
        &self.root
    }

    /// Cumulative counters.
    pub fn stats(&self) -> MirrorStats {
        MirrorStats {
            files_compressed: self.files_compressed.load(Ordering::Relaxed),
            compression_hits: self.compression_hits.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            bytes_written: self.bytes_written.load(Ordering::Relaxed),
        }
    }

    /// Writes what `closure` needs and returns the reply listing it.
    pub fn reply_for(&self, closure: &Closure) -> Result<Reply, MirrorError> {
        // The analysis's cache has looked up the directories on the way already.
        let fs = closure.ids.as_ref().map_or(&self.fs, |ids| &*ids.fs);
        let (known, system_dirs) = {
            let mut shadow = self.lock_shadow();
            let same_batch = shadow.last_batch.len() == closure.system_dirs.len()
                && shadow
                    .last_batch
                    .iter()
                    .zip(closure.system_dirs.iter())
                    .all(|(a, b)| a.as_os_str() == b.as_os_str());
            if !same_batch {
                for dir in closure.system_dirs.iter() {
                    self.link_system_dir(&mut shadow, dir, &closure.system_dirs)?;
                }
                shadow.last_batch = closure.system_dirs.to_vec();
            }
            for path in &closure.paths_used {
                self.do_path(&mut shadow, fs, path)?;
            }
            if let Some(ids) = &closure.ids {
                shadow.use_table(ids.table.serial);
                // A closure an earlier reply of this generation walked is done (held
                // here, so that its address is not reused); so are its texts and files.
                let key = Arc::as_ptr(&ids.summary) as usize;
                if !shadow.done_summaries.contains_key(&key) {
                    if !ids.summary.texts.is_subset(&shadow.done_texts) {
                        let new = &ids.summary.texts - &shadow.done_texts;
                        for t in ids.table.texts.values(&new) {
                            self.do_path(&mut shadow, fs, &t.joined)?;
                        }
                        shadow.done_texts |= new;
                    }
                    for (file, &id) in closure.files.iter().zip(ids.files.iter()) {
                        if !shadow.done_files.contains(id) {
                            self.do_path(&mut shadow, fs, &file.realpath)?;
                            shadow.done_files.insert(id);
                        }
                    }
                    shadow.done_summaries.insert(key, ids.summary.clone());
                }
            } else {
                for file in closure.files.iter() {
                    self.do_path(&mut shadow, fs, &file.realpath)?;
                }
            }
            // Outputs an earlier reply of this generation compressed, by file.
            let known: Vec<Option<Arc<Path>>> = match &closure.ids {
                Some(ids) => ids
                    .files
                    .iter()
                    .map(|id| shadow.outs.get(id).cloned())
                    .collect(),
                None => vec![None; closure.files.len()],
            };
            // Only a file not compressed yet needs the system dirs.
            let system_dirs = if known.iter().any(Option::is_none) {
                shadow.system_dirs.clone()
            } else {
                Vec::new()
            };
            (known, system_dirs)
        };
        let mut reply = Reply::default();
        let mut seen = HashSet::default();
        let ids = closure.ids.as_ref();
        // The files to compress now; files under a system dir are reachable on the
        // server through its link (writing them would go through that link into the
        // real directory).
        let todo: Vec<usize> = known
            .iter()
            .enumerate()
            .filter(|&(k, out)| {
                out.is_none() && !under_any(&closure.files[k].realpath, &system_dirs)
            })
            .map(|(k, _)| k)
            .collect();
        // The outputs made now, by file index.
        let mut made: Vec<Option<Arc<Path>>> = vec![None; closure.files.len()];
        for (k, out) in todo
            .iter()
            .zip(self.compress_all(closure, &todo, &mut reply)?)
        {
            made[*k] = Some(out);
        }
        for (k, (known, made)) in known.into_iter().zip(made).enumerate() {
            let id = ids.map(|i| (i.table.serial, i.files[k]));
            let out = match (known, made) {
                (Some(out), _) => {
                    self.compression_hits.fetch_add(1, Ordering::Relaxed);
                    out
                }
                // Under a system dir.
                (None, None) => continue,
                (None, Some(out)) => {
                    if let Some((serial, id)) = id {
                        let mut shadow = self.lock_shadow();
                        if shadow.ids_serial == serial {
                            shadow.outs.insert(id, out.clone());
                        }
                    }
                    out
                }
            };
            if k == 0 {
                // The source comes first in a closure.
                self.own_source_line(&out, &closure.files[0], &mut reply)?;
            }
            // The analysis lists each file once; other closures may repeat one.
            if ids.is_some() || seen.insert(out.clone()) {
                reply.paths.push(out);
            }
        }
        let rest = self.lock_shadow().rest(self.force_dirs);
        reply.paths.extend(
            rest.iter()
                .filter(|p| seen.is_empty() || !seen.contains(*p))
                .cloned(),
        );
        Ok(reply)
    }

    /// The indexes of the closure's files that a reply listing it would compress now:
    /// none written for an earlier reply of this generation, none under a system dir (the
    /// closure's, guessed or probed, or one linked already: no reply writes those). Empty
    /// for a closure an earlier reply walked whole (a warm request's).
    pub fn to_compress(&self, closure: &Closure) -> Vec<usize> {
        let shadow = self.lock_shadow();
        let ids = closure
            .ids
            .as_ref()
            .filter(|ids| ids.table.serial == shadow.ids_serial);
        if let Some(ids) = ids {
            if shadow
                .done_summaries
                .contains_key(&(Arc::as_ptr(&ids.summary) as usize))
            {
                return Vec::new();
            }
        }
        (0..closure.files.len())
            .filter(|&k| {
                let f = &closure.files[k].realpath;
                !ids.is_some_and(|ids| shadow.outs.contains_key(&ids.files[k]))
                    && !under_any(f, &closure.system_dirs)
                    && !under_any(f, &shadow.system_dirs)
            })
            .collect()
    }

    /// Compresses the closure's files at the indexes `todo` (from
    /// [`Mirror::to_compress`]), one after another, for the reply that lists them to
    /// write: nothing is written to the root, as the reply's shadow-tree walk makes the
    /// directories (and tells which it made). Meant for another thread (an idle
    /// read-ahead helper) while the reply walks the shadow tree, or while the analysis
    /// ends; a file the reply wants
    /// meanwhile is compressed once (the reply waits for it). A file that fails is left
    /// for the reply to meet.
    pub fn compress_ahead(&self, closure: &Closure, todo: &[usize]) {
        for &k in todo {
            let file = &closure.files[k];
            let _ = self.compress_file(
                &file.realpath,
                file.abs_spelling.as_deref(),
                true,
                &mut Reply::default(),
            );
        }
    }

    fn lock_shadow(&self) -> MutexGuard<'_, Shadow> {
        // A panic while holding the lock leaves the state consistent enough: every
        // recorded entry exists on disk.
        self.shadow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `R + path` for an absolute client path.
    fn under_root(&self, path: &Path) -> PathBuf {
        let mut bytes = self.root.prefix().as_os_str().as_bytes().to_vec();
        let p = path.as_os_str().as_bytes();
        if !p.starts_with(b"/") {
            bytes.push(b'/');
        }
        bytes.extend_from_slice(p);
        PathBuf::from(OsString::from_vec(bytes))
    }

    /// Links system directory `dir` into the root (spec 4.8). `batch` is the list the
    /// directory came with: a directory inside another of the batch is covered by the
    /// other's link.
    fn link_system_dir(
        &self,
        shadow: &mut Shadow,
        dir: &Path,
        batch: &[PathBuf],
    ) -> Result<(), MirrorError> {
        if !dir.is_absolute() || dir == Path::new("/") {
            return Ok(());
        }
        let covered = |d: &Path| d != dir && dir.starts_with(d);
        if shadow.system_dirs.iter().any(|d| d == dir || covered(d))
            || batch.iter().any(|d| covered(d))
        {
            return Ok(());
        }
        let link = self.under_root(dir);
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |error| MirrorError::Write { path, error }
        };
        // A link above `dir` made by another generation's state cannot exist here, but
        // an earlier request may have made real directories on the way: those are fine.
        match fs::symlink_metadata(&link) {
            Ok(m) if m.file_type().is_symlink() => {
                shadow.system_dirs.push(dir.to_path_buf());
                shadow.system_links.push(link);
                shadow.version += 1;
                return Ok(());
            }
            Ok(m) if m.is_dir() => {
                // A deeper system dir was linked earlier (for example
                // /usr/include/x86_64-linux-gnu before /usr/include): replace it.
                crate::client_root::remove_tree(&link).map_err(werr(&link))?;
                shadow.system_links.retain(|l| !l.starts_with(&link));
                shadow.system_dirs.retain(|d| !d.starts_with(dir));
                shadow.links.retain(|l| !l.starts_with(&link));
                shadow.must_exist.retain(|l| !l.starts_with(&link));
                shadow.existing.retain(|l| !l.starts_with(&link));
                self.compressed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|out, _| !out.starts_with(&link));
                shadow.forget_ids();
                shadow.version += 1;
            }
            Ok(_) => {
                fs::remove_file(&link).map_err(werr(&link))?;
            }
            Err(_) => {}
        }
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(werr(parent))?;
        }
        std::os::unix::fs::symlink(system_link_target(dir), &link).map_err(werr(&link))?;
        shadow.system_dirs.push(dir.to_path_buf());
        shadow.system_links.push(link);
        shadow.version += 1;
        Ok(())
    }

    /// The shadow-tree walk of one textual absolute path (spec 4.6, `DoPath`).
    fn do_path(&self, shadow: &mut Shadow, fs: &FsCache, path: &Path) -> Result<(), MirrorError> {
        if !path.as_os_str().as_bytes().starts_with(b"/") {
            // Only absolute client paths have a place under the root.
            return Ok(());
        }
        let mut f = normalize_slashes(path);
        while !f.is_empty() && f != b"/" {
            if shadow.visited.contains(&f[..]) {
                break;
            }
            shadow.visited.insert(f.as_slice().into());
            let slash = f.iter().rposition(|&b| b == b'/').unwrap_or(0);
            // The parent's text: `f` up to the slash (`/` for a top-level name).
            let parent_len = slash.max(1);
            let parent = Path::new(std::ffi::OsStr::from_bytes(&f[..parent_len]));
            let parent_real: Arc<Path> = fs
                .dir(parent)
                .or_else(|| fs.file(parent))
                .unwrap_or_else(|| Arc::from(parent));
            if under_any(&parent_real, &shadow.system_dirs) {
                // Under a system dir the root holds a link to the client's own
                // directory: nothing may be created through it. A path that does not
                // exist there ends the walk; otherwise go on with the parent, which
                // may be a project symlink into the system dir. (On this machine the
                // link resolves to the directory itself, so the stat cache answers:
                // a `stat` through the link climbs its twenty-odd `..` every time.)
                if fs.dir(&parent_real).is_none() {
                    break;
                }
                f.truncate(parent_len);
                continue;
            }
            let shadow_dir = if *parent_real == *Path::new("/") {
                self.root.prefix().to_path_buf()
            } else {
                self.under_root(&parent_real)
            };
            if !shadow.existing.contains(&shadow_dir)
                && make_dir(&mut shadow.existing, &shadow_dir)?
            {
                if self.force_dirs {
                    let forcing = shadow_dir.join(FORCING_FILE);
                    fs::OpenOptions::new()
                        .append(true)
                        .create(true)
                        .open(&forcing)
                        .map_err(|error| MirrorError::Write {
                            path: forcing,
                            error,
                        })?;
                }
                shadow.must_exist.push(shadow_dir.clone());
                shadow.version += 1;
            }
            let key = Path::new(std::ffi::OsStr::from_bytes(&f));
            let name = &f[slash + 1..];
            // From the cache: a directory on the way was looked up as a parent.
            if !name.is_empty() && fs.is_link(key) {
                let link = shadow_dir.join(std::ffi::OsStr::from_bytes(name));
                if !link.exists() {
                    if let Ok(target) = fs::canonicalize(key) {
                        match std::os::unix::fs::symlink(&target, &link) {
                            Ok(()) => {
                                shadow.links.push(link);
                                shadow.version += 1;
                            }
                            // A dangling link left by an earlier request: keep it.
                            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                            Err(error) => return Err(MirrorError::Write { path: link, error }),
                        }
                    }
                }
            }
            f.truncate(parent_len);
        }
        Ok(())
    }

    /// Compresses the closure's files at the indexes `todo` (in order); their output
    /// paths, in the same order. A first request has dozens of files to compress: they
    /// are shared out among up to [`COMPRESSING_THREADS`] threads, this one included;
    /// those a request's [`Mirror::compress_ahead`] thread has compressed are only
    /// written. On an error, the first failed file's (in order).
    fn compress_all(
        &self,
        closure: &Closure,
        todo: &[usize],
        reply: &mut Reply,
    ) -> Result<Vec<Arc<Path>>, MirrorError> {
        let one = |k: usize, reply: &mut Reply| -> Result<Arc<Path>, MirrorError> {
            let file = &closure.files[k];
            self.compress_file(&file.realpath, file.abs_spelling.as_deref(), false, reply)
                .map(Arc::from)
        };
        let threads = crate::available_cores()
            .min(COMPRESSING_THREADS)
            .min(todo.len() / FILES_PER_COMPRESSING_THREAD)
            .max(1);
        if threads == 1 {
            return todo.iter().map(|&k| one(k, reply)).collect();
        }
        // Each thread takes the next file until none is left.
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = |reply: &mut Reply| {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&k) = todo.get(i) else { break };
                done.push((i, one(k, reply)));
            }
            (done, std::mem::take(reply))
        };
        let mut results: Vec<Option<Result<Arc<Path>, MirrorError>>> =
            (0..todo.len()).map(|_| None).collect();
        std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads)
                .filter_map(|_| {
                    std::thread::Builder::new()
                        .name("compress".into())
                        .spawn_scoped(s, || work(&mut Reply::default()))
                        .ok()
                })
                .collect();
            let mut parts = vec![work(&mut Reply::default())];
            // A helper that panicked left its files undone: they are done below.
            parts.extend(helpers.into_iter().filter_map(|h| h.join().ok()));
            for (done, part) in parts {
                reply.files_compressed += part.files_compressed;
                reply.bytes_read += part.bytes_read;
                reply.bytes_written += part.bytes_written;
                for (i, r) in done {
                    results[i] = Some(r);
                }
            }
        });
        todo.iter()
            .zip(results)
            .map(|(&k, r)| r.unwrap_or_else(|| one(k, reply)))
            .collect()
    }

    /// Compresses `realpath` into the root (once per generation and output path) and
    /// returns the output path.
    fn compress_file(
        &self,
        realpath: &Path,
        abs_spelling: Option<&Path>,
        ahead: bool,
        reply: &mut Reply,
    ) -> Result<PathBuf, MirrorError> {
        let mut out = self.under_root(realpath).into_os_string();
        out.push(if abs_spelling.is_some() {
            ".lzo.abs"
        } else {
            ".lzo"
        });
        let out = PathBuf::from(out);
        let cell = {
            let mut map = self.compressed.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(out.clone()).or_default().clone()
        };
        let mut done = cell.lock().unwrap_or_else(|e| e.into_inner());
        let packed = match std::mem::take(&mut *done) {
            Written::No => None,
            Written::Ahead(packed) if !ahead => Some(packed),
            was => {
                if was == Written::Yes {
                    self.compression_hits.fetch_add(1, Ordering::Relaxed);
                }
                *done = was;
                return Ok(out);
            }
        };
        let packed = match packed {
            Some(packed) => packed,
            None => {
                let packed = self.compress(realpath, abs_spelling, reply)?;
                if ahead {
                    *done = Written::Ahead(packed);
                    return Ok(out);
                }
                packed
            }
        };
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |error| MirrorError::Write { path, error }
        };
        // Written in place: no reply lists the file before `done` is set, and a request
        // that wants it meanwhile waits on `cell` (spec 2.4). Its directory usually
        // exists already (the shadow tree's walk makes it).
        let create = || fs::File::create(&out);
        let created = match create() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = out.parent().unwrap_or(self.root.prefix());
                fs::create_dir_all(parent).map_err(werr(parent))?;
                create()
            }
            created => created,
        };
        if let Err(error) = created.and_then(|mut f| f.write_all(&packed)) {
            let _ = fs::remove_file(&out);
            return Err(MirrorError::Write { path: out, error });
        }
        if let Some(spelling) = abs_spelling {
            self.lock_lines()
                .insert(out.clone(), (spelling.to_path_buf(), false));
        }
        *done = Written::Yes;
        Ok(out)
    }

    fn lock_lines(&self) -> MutexGuard<'_, HashMap<PathBuf, (PathBuf, bool)>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives a request's source file, when it is shipped as `.lzo.abs`, the `#line`
    /// spelling of the request's own command line. There is one output per file per
    /// client root, and its `#line` is the first request's: a `.c` file that an earlier
    /// request reached as a header through another absolute spelling (`-I/p/build/../lib`
    /// and `#include "x.c"`) would otherwise compile with that spelling in `__FILE__`
    /// (distcc's pump does so; the object then differs from a local build's). The output
    /// is replaced by a rename, so a client reading it meanwhile reads one whole version.
    /// The first source's spelling stays: later requests never change it.
    fn own_source_line(
        &self,
        out: &Path,
        file: &ClosureFile,
        reply: &mut Reply,
    ) -> Result<(), MirrorError> {
        let Some(spelling) = file.abs_spelling.as_deref() else {
            return Ok(());
        };
        {
            let mut lines = self.lock_lines();
            match lines.get_mut(out) {
                Some((s, source)) if s.as_path() == spelling => {
                    *source = true;
                    return Ok(());
                }
                Some((_, false)) => {}
                // Another source's spelling, or not written by this mirror.
                _ => return Ok(()),
            }
        }
        // Serialized with any compression of the same output.
        let cell = self
            .compressed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(out)
            .cloned();
        let Some(cell) = cell else { return Ok(()) };
        let _done = cell.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(self.lock_lines().get(out), Some((_, true))) {
            return Ok(());
        }
        let packed = self.compress(&file.realpath, Some(spelling), reply)?;
        let mut tmp = out.as_os_str().to_owned();
        tmp.push(".new");
        let tmp = PathBuf::from(tmp);
        let written = fs::write(&tmp, &packed).and_then(|()| fs::rename(&tmp, out));
        if let Err(error) = written {
            let _ = fs::remove_file(&tmp);
            return Err(MirrorError::Write {
                path: out.to_path_buf(),
                error,
            });
        }
        self.lock_lines()
            .insert(out.to_path_buf(), (spelling.to_path_buf(), true));
        Ok(())
    }

    /// `realpath`'s content (after a `#line 1` line naming `abs_spelling`, if any),
    /// LZO-compressed; counted.
    fn compress(
        &self,
        realpath: &Path,
        abs_spelling: Option<&Path>,
        reply: &mut Reply,
    ) -> Result<Vec<u8>, MirrorError> {
        let mut data = Vec::new();
        if let Some(spelling) = abs_spelling {
            data.extend_from_slice(b"#line 1 \"");
            data.extend_from_slice(spelling.as_os_str().as_bytes());
            data.extend_from_slice(b"\"\n");
        }
        let content = fs::read(realpath).map_err(|error| MirrorError::Read {
            path: realpath.to_path_buf(),
            error,
        })?;
        data.extend_from_slice(&content);
        let packed = lzo::compress(&data).map_err(|error| MirrorError::Compress {
            path: realpath.to_path_buf(),
            error,
        })?;
        self.files_compressed.fetch_add(1, Ordering::Relaxed);
        self.bytes_read
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(packed.len() as u64, Ordering::Relaxed);
        reply.files_compressed += 1;
        reply.bytes_read += data.len() as u64;
        reply.bytes_written += packed.len() as u64;
        Ok(packed)
    }
}

/// At most this many threads compress a reply's files.
const COMPRESSING_THREADS: usize = 4;
/// A thread is added for each this many files to compress (a request's
/// [`Mirror::compress_ahead`] thread too): starting a thread costs about as much as
/// compressing a few small headers.
pub(crate) const FILES_PER_COMPRESSING_THREAD: usize = 4;

/// Makes the directory `dir` under the root, and the directories on the way to it
/// that are missing, recording each in `existing`; whether `dir` itself was made (it
/// existed otherwise). One `mkdir` a directory, where a look first and then
/// `create_dir_all` (which tries the deepest first) took two or more.
fn make_dir(existing: &mut HashSet<PathBuf>, dir: &Path) -> Result<bool, MirrorError> {
    let werr = |error| MirrorError::Write {
        path: dir.to_path_buf(),
        error,
    };
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // A system link counts, as the directory it leads to.
            if !dir.is_dir() {
                return Err(werr(e));
            }
            existing.insert(dir.to_path_buf());
            return Ok(false);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match dir.parent() {
                Some(parent) if !existing.contains(parent) => {
                    make_dir(existing, parent)?;
                }
                _ => return Err(werr(e)),
            }
            fs::create_dir(dir).map_err(werr)?;
        }
        Err(e) => return Err(werr(e)),
    }
    existing.insert(dir.to_path_buf());
    Ok(true)
}

/// The target of a system-directory link: `"../"` × (20 + slashes in `dir`) followed by
/// `dir` without its leading `/`. It climbs out of any distccd temp root of at most 20
/// components and lands on the server's own copy of `dir`.
pub fn system_link_target(dir: &Path) -> PathBuf {
    let bytes = dir.as_os_str().as_bytes();
    let slashes = bytes.iter().filter(|&&b| b == b'/').count();
    let mut target = b"../".repeat(20 + slashes);
    target.extend_from_slice(bytes.strip_prefix(b"/").unwrap_or(bytes));
    PathBuf::from(OsString::from_vec(target))
}

/// Whether `path` is `dir` or inside it, for one of `dirs`.
fn under_any(path: &Path, dirs: &[PathBuf]) -> bool {
    let p = path.as_os_str().as_bytes();
    // Asked for every path of a first request's shadow-tree walk: `p` is looked at once.
    let plain_p = plain(p);
    dirs.iter().any(|d| {
        let d = d.as_os_str().as_bytes();
        if plain_p && plain(d) {
            // Component-wise `starts_with` compares bytes on such paths.
            p.starts_with(d) && (p.len() == d.len() || d == b"/" || p[d.len()] == b'/')
        } else {
            path.starts_with(Path::new(std::ffi::OsStr::from_bytes(d)))
        }
    })
}

/// Whether an absolute path is spelled one way only: no repeated or trailing slash and
/// no `.` component (a name starting with a dot also answers no).
fn plain(p: &[u8]) -> bool {
    p.first() == Some(&b'/')
        && (p.len() == 1 || !p.ends_with(b"/"))
        && !memchr::memchr_iter(b'/', p).any(|i| matches!(p.get(i + 1), Some(b'/' | b'.')))
}

/// Collapses repeated slashes and drops trailing ones (but keeps a lone `/`).
fn normalize_slashes(path: &Path) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.as_os_str().len());
    for &b in path.as_os_str().as_bytes() {
        if b == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(b);
    }
    while out.len() > 1 && out.ends_with(b"/") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::ClosureFile;
    use crate::client_root::ClientTmp;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _work: tempfile::TempDir,
        _base: tempfile::TempDir,
        proj: PathBuf,
        mirror: Mirror,
    }

    /// The `proj` example of spec 4.9, with its client root in a private base.
    fn fixture(force_dirs: bool) -> Fixture {
        let work = tempfile::tempdir().unwrap();
        let proj = fs::canonicalize(work.path()).unwrap().join("proj");
        for d in ["realinc", "absinc", "sub"] {
            fs::create_dir_all(proj.join(d)).unwrap();
        }
        symlink(proj.join("realinc"), proj.join("inc")).unwrap();
        fs::write(proj.join("main.c"), "#include \"inc/a.h\"\n").unwrap();
        fs::write(proj.join("realinc/a.h"), "#include \"a2.h\"\n").unwrap();
        fs::write(proj.join("realinc/a2.h"), "#define X 1\n").unwrap();
        fs::write(proj.join("b.h"), "caf\u{e9}\n").unwrap();
        fs::write(proj.join("absinc/c.h"), "").unwrap();
        // In /tmp whatever TMPDIR says: a client-root base is at most two levels deep.
        let base = tempfile::tempdir_in("/tmp").unwrap();
        let client_tmp = ClientTmp::from_env(Some(base.path().as_os_str())).unwrap();
        let root = client_tmp.create_root(std::process::id(), 1).unwrap();
        Fixture {
            _work: work,
            _base: base,
            proj,
            mirror: Mirror::new(root, force_dirs),
        }
    }

    fn closure(proj: &Path) -> Closure {
        let file = |p: &str, abs: Option<&str>| ClosureFile {
            realpath: proj.join(p),
            abs_spelling: abs.map(|a| proj.join(a)),
        };
        Closure {
            files: Arc::new(vec![
                file("main.c", None),
                file("realinc/a.h", None),
                file("realinc/a2.h", None),
                file("b.h", None),
                file("absinc/c.h", Some("absinc/c.h")),
            ]),
            paths_used: vec![
                proj.join("main.c"),
                proj.join("inc/a.h"),
                proj.join("inc/a2.h"),
                proj.join("sub/../b.h"),
                proj.join("absinc/c.h"),
            ],
            system_dirs: Arc::new(vec![
                PathBuf::from("/usr/local/include"),
                PathBuf::from("/usr/include/x86_64-linux-gnu"),
                PathBuf::from("/usr/include"),
            ]),
            ids: None,
        }
    }

    /// The client's view of a reply path: three components stripped, `.abs`, `.lzo`.
    fn original(root: &Path, p: &Path) -> PathBuf {
        let rest = p.strip_prefix(root).unwrap();
        let s = format!("/{}", rest.display());
        let s = s.strip_suffix(".abs").unwrap_or(&s);
        PathBuf::from(s.strip_suffix(".lzo").unwrap_or(s))
    }

    /// The reply for an analysis closure (by ids: paths done once, file list and tail
    /// cached) is the reply for the same closure spelled out (every path walked), and a
    /// repeat or another translation unit sharing its headers lists the same files.
    #[test]
    fn analysis_ids_give_the_spelled_out_reply() {
        let fx = fixture(true);
        let proj = &fx.proj;
        fs::write(proj.join("sub/d.h"), "#include \"../b.h\"\n").unwrap();
        fs::write(
            proj.join("main.c"),
            "#include \"inc/a.h\"\n#include \"sub/../sub/d.h\"\n",
        )
        .unwrap();
        fs::write(proj.join("other.c"), "#include \"inc/a.h\"\n").unwrap();
        let analyzer = crate::analysis::Analyzer::new(crate::analysis::AnalyzerConfig {
            probe_path: Some("/usr/bin:/bin".into()),
            ..Default::default()
        });
        let argv = |src: &str| -> Vec<Vec<u8>> {
            ["gcc", "-c", src]
                .iter()
                .map(|a| a.as_bytes().to_vec())
                .collect()
        };
        let budget = std::time::Duration::from_secs(10);
        let by_ids = analyzer.analyze(proj, &argv("main.c"), budget).unwrap();
        assert!(by_ids.ids.is_some() && by_ids.paths_used.is_empty());
        let spelled = Closure {
            paths_used: by_ids.all_paths_used(),
            ids: None,
            ..by_ids.clone()
        };
        assert!(spelled.paths_used.contains(&proj.join("sub/../sub/d.h")));
        let other = fixture(true);
        let want = other.mirror.reply_for(&spelled).unwrap();
        let got = fx.mirror.reply_for(&by_ids).unwrap();
        let under = |root: &Path, r: &Reply| -> Vec<PathBuf> {
            r.paths
                .iter()
                .map(|p| p.strip_prefix(root).unwrap().to_path_buf())
                .collect()
        };
        // Both mirrors hold `fx`'s project, each under its own root.
        assert_eq!(
            under(fx.mirror.root().prefix(), &got),
            under(other.mirror.root().prefix(), &want)
        );
        // Repeats reuse everything and list the same; nothing is left to compress.
        let repeat = analyzer.analyze(proj, &argv("main.c"), budget).unwrap();
        assert_eq!(fx.mirror.to_compress(&repeat), Vec::<usize>::new());
        let again = fx.mirror.reply_for(&repeat).unwrap();
        assert_eq!(again.paths, got.paths);
        assert_eq!(again.files_compressed, 0);
        // Another unit sharing a header: its own source, the shared header as before.
        let other_c = analyzer.analyze(proj, &argv("other.c"), budget).unwrap();
        let todo = fx.mirror.to_compress(&other_c);
        assert_eq!(todo, vec![0], "only other.c: {:?}", other_c.files);
        let o = fx.mirror.reply_for(&other_c).unwrap();
        assert_eq!(o.files_compressed, 1);
        let a_h = got
            .paths
            .iter()
            .find(|p| p.ends_with("realinc/a.h.lzo"))
            .unwrap();
        assert!(o.paths.contains(a_h), "{:?}", o.paths);
        for p in &o.paths {
            assert!(fs::symlink_metadata(p).is_ok(), "{}", p.display());
        }
    }

    #[test]
    fn reply_of_the_proj_example() {
        let fx = fixture(true);
        let proj = &fx.proj;
        let reply = fx.mirror.reply_for(&closure(proj)).unwrap();
        let root = fx.mirror.root().prefix().to_path_buf();
        let p = |s: &str| format!("{}", proj.join(s).display());
        let got: Vec<String> = reply
            .paths
            .iter()
            .map(|x| original(&root, x).display().to_string())
            .collect();
        let want = [
            p("main.c"),
            p("realinc/a.h"),
            p("realinc/a2.h"),
            p("b.h"),
            p("absinc/c.h"),
            "/usr/local/include".to_string(),
            "/usr/include".to_string(),
            p("inc"),
        ];
        assert_eq!(got[..8], want[..]);
        // Forcing files as a set: their order follows the walk.
        let mut got_forcing = got[8..].to_vec();
        got_forcing.sort();
        let mut want_forcing: Vec<String> = ["", "/realinc", "/sub", "/absinc"]
            .iter()
            .map(|d| format!("{}{d}/{FORCING_FILE}", proj.display()))
            .collect();
        want_forcing.sort();
        assert_eq!(got_forcing, want_forcing);
        assert_eq!(reply.files_compressed, 5);

        // Every path exists, under a three-component prefix, with the right kind.
        assert_eq!(root.components().count(), 4);
        for path in &reply.paths {
            let m = fs::symlink_metadata(path).unwrap();
            assert!(path.starts_with(&root));
            if path.ends_with(FORCING_FILE) {
                assert!(m.is_file());
                assert_eq!(m.len(), 0);
            }
        }
        let lzo = fs::read(
            root.join(proj.strip_prefix("/").unwrap())
                .join("realinc/a2.h.lzo"),
        )
        .unwrap();
        assert_eq!(lzo, lzo::compress(b"#define X 1\n").unwrap());
        let abs = root
            .join(proj.strip_prefix("/").unwrap())
            .join("absinc/c.h.lzo.abs");
        let line = format!("#line 1 \"{}\"\n", proj.join("absinc/c.h").display());
        assert_eq!(
            fs::read(abs).unwrap(),
            lzo::compress(line.as_bytes()).unwrap()
        );
        let non_ascii = root.join(proj.strip_prefix("/").unwrap()).join("b.h.lzo");
        assert_eq!(
            fs::read(non_ascii).unwrap(),
            lzo::compress("caf\u{e9}\n".as_bytes()).unwrap()
        );

        // The shadow link points at the absolute client realpath.
        let inc = root.join(proj.strip_prefix("/").unwrap()).join("inc");
        assert_eq!(fs::read_link(inc).unwrap(), proj.join("realinc"));
        // System links climb 20 + slashes.
        let usr_include = root.join("usr/include");
        assert_eq!(
            fs::read_link(usr_include).unwrap(),
            PathBuf::from(format!("{}usr/include", "../".repeat(22)))
        );

        // A second request is answered from the caches and lists the same entries.
        let again = fx.mirror.reply_for(&closure(proj)).unwrap();
        assert_eq!(again.paths, reply.paths);
        assert_eq!(again.files_compressed, 0);
        assert_eq!(fx.mirror.stats().compression_hits, 5);
    }

    #[test]
    fn no_force_dirs_lists_and_creates_no_forcing_files() {
        let fx = fixture(false);
        let reply = fx.mirror.reply_for(&closure(&fx.proj)).unwrap();
        assert!(reply.paths.iter().all(|p| !p.ends_with(FORCING_FILE)));
        let root = fx.mirror.root().prefix();
        let sub = root.join(fx.proj.strip_prefix("/").unwrap()).join("sub");
        assert!(sub.is_dir());
        assert!(!sub.join(FORCING_FILE).exists());
    }

    #[test]
    fn project_link_into_a_system_dir_is_shadowed_without_writing_through() {
        let fx = fixture(true);
        symlink("/usr/include", fx.proj.join("sysinc")).unwrap();
        let c = Closure {
            files: Arc::new(vec![ClosureFile {
                realpath: fx.proj.join("main.c"),
                abs_spelling: None,
            }]),
            paths_used: vec![
                fx.proj.join("main.c"),
                fx.proj.join("sysinc/stdio.h"),
                PathBuf::from("/usr/include/stdio.h"),
                PathBuf::from("/usr/include/no-such-dir/x.h"),
            ],
            system_dirs: Arc::new(vec![PathBuf::from("/usr/include")]),
            ids: None,
        };
        let reply = fx.mirror.reply_for(&c).unwrap();
        let root = fx.mirror.root().prefix();
        let link = root.join(fx.proj.strip_prefix("/").unwrap()).join("sysinc");
        assert!(
            reply.paths.iter().any(|p| **p == *link),
            "{:?}",
            reply.paths
        );
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("/usr/include"));
        assert!(!Path::new("/usr/include/no-such-dir").exists());
        assert!(!Path::new("/usr/include").join(FORCING_FILE).exists());
        let sys = root.join("usr/include");
        assert!(reply
            .paths
            .iter()
            .all(|p| !p.starts_with(&sys) || **p == *sys));
    }

    #[test]
    fn system_link_targets() {
        for (dir, ups) in [
            ("/usr/include", 22),
            ("/usr/local/include", 23),
            ("/usr/lib/gcc/x86_64-linux-gnu/12/include", 26),
        ] {
            let want = format!("{}{}", "../".repeat(ups), &dir[1..]);
            assert_eq!(system_link_target(Path::new(dir)), PathBuf::from(want));
        }
    }

    #[test]
    fn deeper_system_link_is_replaced_and_repeats_add_nothing() {
        let fx = fixture(true);
        let only = |dirs: &[&str]| Closure {
            system_dirs: Arc::new(dirs.iter().map(PathBuf::from).collect()),
            ..Closure::default()
        };
        let r1 = fx
            .mirror
            .reply_for(&only(&["/usr/include/x86_64-linux-gnu"]))
            .unwrap();
        assert_eq!(r1.paths.len(), 1);
        let r2 = fx
            .mirror
            .reply_for(&only(&["/usr/include", "/usr/include/c++/12"]))
            .unwrap();
        let root = fx.mirror.root().prefix();
        assert_eq!(r2.paths, vec![Arc::from(root.join("usr/include"))]);
        assert!(fs::symlink_metadata(root.join("usr/include"))
            .unwrap()
            .file_type()
            .is_symlink());
        let r3 = fx
            .mirror
            .reply_for(&only(&["/usr/include/x86_64-linux-gnu", "/usr/include"]))
            .unwrap();
        assert_eq!(r3.paths, r2.paths);
    }

    #[test]
    fn concurrent_requests_see_complete_files() {
        let fx = fixture(true);
        let big = fx.proj.join("big.h");
        let content: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&big, &content).unwrap();
        let c = Closure {
            files: Arc::new(vec![ClosureFile {
                realpath: big.clone(),
                abs_spelling: None,
            }]),
            paths_used: vec![big.clone()],
            system_dirs: Default::default(),
            ids: None,
        };
        let want = lzo::compress(&content).unwrap();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (c, fx, want) = (&c, &fx, &want);
                    s.spawn(move || {
                        // Half compress it ahead first, as a first request's thread does.
                        if i % 2 == 0 {
                            fx.mirror.compress_ahead(c, &[0]);
                        }
                        let reply = fx.mirror.reply_for(c).unwrap();
                        // Read right away: the file must be complete.
                        assert_eq!(&fs::read(&reply.paths[0]).unwrap(), want);
                        reply.paths
                    })
                })
                .collect();
            let all: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert!(all.windows(2).all(|w| w[0] == w[1]));
        });
        assert_eq!(fx.mirror.stats().files_compressed, 1);
    }

    #[test]
    fn unreadable_file_is_a_request_error() {
        let fx = fixture(true);
        let c = Closure {
            files: Arc::new(vec![ClosureFile {
                realpath: fx.proj.join("vanished.h"),
                abs_spelling: None,
            }]),
            ..Closure::default()
        };
        let err = fx.mirror.reply_for(&c).unwrap_err();
        assert_eq!(err.reason(), "unreadable_file");
        // The mirror keeps working.
        assert!(fx.mirror.reply_for(&closure(&fx.proj)).is_ok());
    }

    /// A first request's many files are compressed by several threads: every one is
    /// written, in the closure's order, and an unreadable one still fails the reply.
    #[test]
    fn many_files_are_compressed_in_order() {
        let fx = fixture(false);
        let names: Vec<String> = (0..50).map(|i| format!("sub/f{i}.h")).collect();
        for (i, n) in names.iter().enumerate() {
            fs::write(fx.proj.join(n), format!("int f{i};\n").repeat(i + 1)).unwrap();
        }
        let mut c = Closure {
            files: Arc::new(
                names
                    .iter()
                    .map(|n| ClosureFile {
                        realpath: fx.proj.join(n),
                        abs_spelling: None,
                    })
                    .collect(),
            ),
            paths_used: names.iter().map(|n| fx.proj.join(n)).collect(),
            system_dirs: Default::default(),
            ids: None,
        };
        let reply = fx.mirror.reply_for(&c).unwrap();
        assert_eq!(reply.files_compressed, 50);
        for (i, n) in names.iter().enumerate() {
            let out = &reply.paths[i];
            assert_eq!(original(fx.mirror.root().prefix(), out), fx.proj.join(n));
            let want = lzo::compress(format!("int f{i};\n").repeat(i + 1).as_bytes()).unwrap();
            assert_eq!(fs::read(out).unwrap(), want, "{n}");
        }
        let mut files = (*c.files).clone();
        files.insert(
            30,
            ClosureFile {
                realpath: fx.proj.join("sub/missing.h"),
                abs_spelling: None,
            },
        );
        files.insert(
            40,
            ClosureFile {
                realpath: fx.proj.join("sub/missing2.h"),
                abs_spelling: None,
            },
        );
        c.files = Arc::new(files);
        match fx.mirror.reply_for(&c) {
            Err(MirrorError::Read { path, .. }) => assert_eq!(path, fx.proj.join("sub/missing.h")),
            other => panic!("{other:?}"),
        }
    }

    /// A `.c` file reached first as a header through one absolute spelling, then compiled
    /// as a request's source through another: its output takes the source's `#line`, and
    /// keeps it when the header request comes again (lz4's `xxhash.c`, reached through
    /// `-I.../build/cmake/../../lib` and `#include "xxhash.c"`).
    #[test]
    fn a_source_file_keeps_its_own_line_spelling() {
        let fx = fixture(false);
        fs::write(fx.proj.join("absinc/x.c"), "int x;\n").unwrap();
        let as_header = Closure {
            files: Arc::new(vec![
                ClosureFile {
                    realpath: fx.proj.join("main.c"),
                    abs_spelling: None,
                },
                ClosureFile {
                    realpath: fx.proj.join("absinc/x.c"),
                    abs_spelling: Some(fx.proj.join("sub/../absinc/x.c")),
                },
            ]),
            paths_used: vec![fx.proj.join("main.c"), fx.proj.join("sub/../absinc/x.c")],
            system_dirs: Default::default(),
            ids: None,
        };
        let as_source = Closure {
            files: Arc::new(vec![ClosureFile {
                realpath: fx.proj.join("absinc/x.c"),
                abs_spelling: Some(fx.proj.join("absinc/x.c")),
            }]),
            paths_used: vec![fx.proj.join("absinc/x.c")],
            system_dirs: Default::default(),
            ids: None,
        };
        let line_of = |out: &Path| {
            let mut want =
                format!("#line 1 \"{}\"\n", fx.proj.join("absinc/x.c").display()).into_bytes();
            want.extend_from_slice(b"int x;\n");
            (fs::read(out).unwrap(), lzo::compress(&want).unwrap())
        };
        let first = fx.mirror.reply_for(&as_header).unwrap();
        let out = first.paths[1].clone();
        assert!(out.to_string_lossy().ends_with("x.c.lzo.abs"), "{out:?}");
        let (got, source_line) = line_of(&out);
        assert_ne!(got, source_line, "the header's spelling comes first");
        let second = fx.mirror.reply_for(&as_source).unwrap();
        assert_eq!(second.paths[0], out);
        let (got, source_line) = line_of(&out);
        assert_eq!(got, source_line);
        fx.mirror.reply_for(&as_header).unwrap();
        let (got, source_line) = line_of(&out);
        assert_eq!(
            got, source_line,
            "a header request changed the source's spelling"
        );
    }

    /// Files compressed ahead of their reply are written by it and count as compressed,
    /// not as hits; none is compressed under a linked system dir.
    #[test]
    fn files_compressed_ahead_are_the_replys() {
        let fx = fixture(false);
        let c = closure(&fx.proj);
        let guessed = Closure {
            system_dirs: Default::default(),
            paths_used: Vec::new(),
            ..c.clone()
        };
        let todo = fx.mirror.to_compress(&guessed);
        assert_eq!(todo, vec![0, 1, 2, 3, 4]);
        fx.mirror.compress_ahead(&guessed, &todo);
        let ahead = fx.mirror.stats();
        assert_eq!((ahead.files_compressed, ahead.compression_hits), (5, 0));
        // Nothing is written before the reply: its shadow-tree walk makes the directories.
        let main_out = fx.mirror.under_root(&fx.proj.join("main.c.lzo"));
        assert!(!main_out.exists() && !main_out.parent().unwrap().exists());
        let reply = fx.mirror.reply_for(&c).unwrap();
        let after = fx.mirror.stats();
        assert_eq!((after.files_compressed, after.compression_hits), (5, 0));
        for (file, out) in c.files.iter().zip(&reply.paths) {
            let mut want = Vec::new();
            if let Some(a) = &file.abs_spelling {
                want.extend_from_slice(format!("#line 1 \"{}\"\n", a.display()).as_bytes());
            }
            want.extend_from_slice(&fs::read(&file.realpath).unwrap());
            assert_eq!(fs::read(out).unwrap(), lzo::compress(&want).unwrap());
        }
        fx.mirror.reply_for(&c).unwrap();
        assert_eq!(fx.mirror.stats().compression_hits, 5);

        // A system dir linked by a reply: a guessed closure's file under it is skipped.
        let sys = fx.proj.join("sys");
        fs::create_dir_all(&sys).unwrap();
        fs::write(sys.join("s.h"), "int s;\n").unwrap();
        let linked = Closure {
            system_dirs: Arc::new(vec![sys.clone()]),
            ..closure(&fx.proj)
        };
        fx.mirror.reply_for(&linked).unwrap();
        let under_link = Closure {
            files: Arc::new(vec![ClosureFile {
                realpath: sys.join("s.h"),
                abs_spelling: None,
            }]),
            paths_used: Vec::new(),
            system_dirs: Default::default(),
            ids: None,
        };
        assert_eq!(fx.mirror.to_compress(&under_link), Vec::<usize>::new());
        assert!(!sys.join("s.h.lzo").exists());
        assert_eq!(fx.mirror.stats().files_compressed, 5);
    }

    #[test]
    fn under_any_is_component_wise() {
        let paths = [
            "/",
            "/usr",
            "/usr/",
            "/usr/include",
            "/usr/include/",
            "/usr/include/x.h",
            "/usr/includes/x.h",
            "/usr//include/x.h",
            "/usr/./include/x.h",
            "/usr/include/.",
            "/usr/include/../x.h",
            "/usr/include/.hidden/x.h",
            "/usr/inc",
            "/tmp/a",
        ];
        for p in paths {
            for d in paths {
                let (p, d) = (Path::new(p), PathBuf::from(d));
                assert_eq!(
                    under_any(p, std::slice::from_ref(&d)),
                    p.starts_with(&d),
                    "{} under {}",
                    p.display(),
                    d.display()
                );
            }
        }
    }

    #[test]
    fn slashes_are_normalized() {
        assert_eq!(normalize_slashes(Path::new("/a//b/")), b"/a/b");
        assert_eq!(normalize_slashes(Path::new("/")), b"/");
        assert_eq!(normalize_slashes(Path::new("//")), b"/");
    }
}
