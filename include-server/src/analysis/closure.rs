//! Memoized closures: for each node, the set of every textual path and shipped file
//! reachable from it, kept for all later requests of the generation.
//!
//! A request's closure is the union of the closures of its command-line files. Computing
//! a node's closure needs its children's, so it is one depth-first pass (Tarjan's
//! strongly-connected-components algorithm, iterative): headers that include each other
//! form one component and share one closure, stored under every member once the
//! component is complete. A closure found in the memo is reused whole, so a request
//! walks only the nodes no earlier request closed: a repeated translation unit costs one
//! lookup, a new one its own files plus a lookup per shared header.
//!
//! Sets are roaring bitmaps over ids interned per generation: a *text* id per
//! (configuration, spelling) and a *file* id per (realpath, absolute spelling) of a
//! shipped (non-system) file.
//!
//! A closure that used macros (a computed include somewhere below) lists the symbol
//! versions its evaluations saw; it is reused only while they are current. The request
//! loops until the union it computed is still valid at the end (a definition parsed
//! late may add values to an earlier evaluation: the fixpoint of the spec's 5.8).
//!
//! Within one pass, nodes are identified by (realpath, quote-dir realpath, `#embed`ded
//! or not): a second spelling of a node already open or closed adds its own text but is
//! not descended again, which ends cycles and `D/../D/../` chains. Across requests the
//! memo key also holds the spelling, so a node reached by another spelling gets the texts
//! of that spelling. A file both `#embed`ded and `#include`d is two nodes: the embedded
//! one is not scanned, the included one is.

use roaring::RoaringBitmap;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

use super::graph::{join, Ctx, Edges, Node, PathBytes};
use super::macros::{Checked, MacroTable, Sym};
use super::shard::ShardedMap;
use super::AnalysisError;

/// A textual path of a closure.
#[derive(Debug)]
pub struct TextEntry {
    /// The spelling (relative to the client cwd, or absolute).
    pub text: Arc<[u8]>,
    /// The absolute client path it names.
    pub joined: Arc<Path>,
}

/// A shipped file of a closure.
#[derive(Debug)]
pub struct FileEntry {
    /// Realpath.
    pub real: Arc<Path>,
    /// The absolute spelling it was reached by, if any (shipped as `.lzo.abs`).
    pub abs: Option<Arc<[u8]>>,
}

/// Dense ids for values, shared by the request threads.
#[derive(Debug)]
pub struct Interner<K, V> {
    ids: ShardedMap<K, u32>,
    entries: RwLock<Vec<Arc<V>>>,
}

impl<K: std::hash::Hash + Eq, V> Default for Interner<K, V> {
    fn default() -> Self {
        Interner {
            ids: ShardedMap::default(),
            entries: RwLock::new(Vec::new()),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> Interner<K, V> {
    /// The id of `key`, interning `make()` under a new id if it is new.
    pub fn intern(&self, key: &K, make: impl FnOnce() -> V) -> u32 {
        if let Some(id) = self.ids.get(key) {
            return id;
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let id = entries.len() as u32;
        let got = self.ids.insert_if_absent(key.clone(), id);
        if got == id {
            entries.push(Arc::new(make()));
        }
        got
    }

    /// Calls `f` with each of `ids` and its value, in id order (under the table's read
    /// lock: `f` must not intern).
    pub fn with_values(&self, ids: &RoaringBitmap, mut f: impl FnMut(u32, &V)) {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        for i in ids {
            f(i, &entries[i as usize]);
        }
    }

    /// The values of `ids`, in id order.
    pub fn values(&self, ids: &RoaringBitmap) -> Vec<Arc<V>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        ids.iter().map(|i| entries[i as usize].clone()).collect()
    }
}

/// What is reachable from a node.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Text ids of every node reached, system files included.
    pub texts: RoaringBitmap,
    /// File ids of the shipped (non-system) files reached.
    pub files: RoaringBitmap,
    /// Macro symbols the computed includes below looked up, with their versions.
    pub deps: Vec<(Sym, u64)>,
    /// A computed include below was approximated.
    pub approximated: bool,
    /// Shipped nodes below with an exactly evaluated computed include (for widening).
    pub exact_nodes: Vec<Node>,
    /// The reply's file list, made once for a memoized closure of a source.
    pub materialized: std::sync::OnceLock<Materialized>,
    /// When `deps` were last found current.
    pub checked: Checked,
}

/// A closure's files as a reply lists them (see `analysis::materialize`).
#[derive(Debug, Clone)]
pub struct Materialized {
    /// The source they were ordered for (first).
    pub source: Arc<Path>,
    /// The files.
    pub files: Arc<Vec<super::ClosureFile>>,
    /// Their file ids.
    pub ids: Arc<Vec<u32>>,
}

impl Summary {
    /// Whether every symbol it depends on still has the version it saw.
    pub fn valid(&self, table: &MacroTable) -> bool {
        table.current(&self.deps, &self.checked)
    }

    /// Adds what `other` reaches.
    pub fn merge(&mut self, other: &Summary) {
        self.texts |= &other.texts;
        self.files |= &other.files;
        self.deps.extend(other.deps.iter().cloned());
        self.approximated |= other.approximated;
        self.exact_nodes.extend(other.exact_nodes.iter().cloned());
    }

    fn own_edges(&mut self, ctx: &Ctx<'_>, node: &Node, edges: &Edges) {
        self.deps.extend(edges.deps.iter().cloned());
        self.approximated |= edges.approximated;
        if edges.exact_computed && !ctx.cfg.is_system(&node.real) {
            self.exact_nodes.push(node.clone());
        }
    }

    fn finish(mut self) -> Summary {
        self.deps.sort();
        self.deps.dedup();
        let mut seen = HashSet::default();
        self.exact_nodes
            .retain(|n| seen.insert((PathBytes(n.real.clone()), PathBytes(n.dir_real.clone()))));
        self
    }
}

/// The memo key of a node: configuration, realpath, quote-dir realpath, spelling, and
/// whether it is `#embed`ded (then not scanned: its closure is itself alone).
pub type MemoKey = (u64, PathBytes, PathBytes, Arc<[u8]>, bool);

/// The intern key of a shipped file: realpath and absolute spelling.
pub type FileKey = (PathBytes, Option<Arc<[u8]>>);

/// Per-generation state of the memoized closures.
#[derive(Debug)]
pub struct Closures {
    /// Unique in the process: tells one generation's ids from another's.
    pub serial: u64,
    /// Texts by (configuration, spelling).
    pub texts: Interner<(u64, Arc<[u8]>), TextEntry>,
    /// Shipped files by (realpath, absolute spelling).
    pub files: Interner<FileKey, FileEntry>,
    /// Closures by node.
    pub memo: ShardedMap<MemoKey, Arc<Summary>>,
    /// Closures not of one node (a request's `-include` files and source together, or
    /// an approximated closure widened, see `analysis::union_of`), by their roots.
    pub unions: ShardedMap<Box<[MemoKey]>, Arc<Summary>>,
}

impl Default for Closures {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Closures {
            serial: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            texts: Interner::default(),
            files: Interner::default(),
            memo: ShardedMap::default(),
            unions: ShardedMap::default(),
        }
    }
}

pub fn memo_key(ctx: &Ctx<'_>, n: &Node) -> MemoKey {
    (
        ctx.cfg.id,
        PathBytes(n.real.clone()),
        PathBytes(n.dir_real.clone()),
        n.text.clone(),
        n.embed,
    )
}

/// The text id of a node.
pub fn text_id(ctx: &Ctx<'_>, n: &Node) -> u32 {
    ctx.gen
        .closures
        .texts
        .intern(&(ctx.cfg.id, n.text.clone()), || TextEntry {
            text: n.text.clone(),
            joined: if n.text.first() == Some(&b'/') {
                Arc::from(super::graph::path_of(&n.text))
            } else {
                Arc::from(join(&ctx.cfg.key.cwd, &n.text).as_path())
            },
        })
}

/// What a node records itself: its text and, if shipped, its file.
fn own(ctx: &Ctx<'_>, n: &Node) -> Summary {
    let mut s = Summary::default();
    s.texts.insert(text_id(ctx, n));
    if !ctx.cfg.is_system(&n.real) {
        let abs = (n.text.first() == Some(&b'/')).then(|| n.text.clone());
        let id = ctx
            .gen
            .closures
            .files
            .intern(&(PathBytes(n.real.clone()), abs.clone()), || FileEntry {
                real: n.real.clone(),
                abs,
            });
        s.files.insert(id);
    }
    s
}

/// A memoized closure still valid.
fn memo_hit(ctx: &Ctx<'_>, key: &MemoKey) -> Option<Arc<Summary>> {
    let s = ctx.gen.closures.memo.get(key)?;
    if !s.valid(&ctx.gen.macros) {
        return None;
    }
    ctx.counters
        .graph_cache_hits
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(s)
}

/// A node on the depth-first path.
struct Frame {
    node: Node,
    edges: Option<Arc<Edges>>,
    next: usize,
    index: u32,
    low: u32,
    acc: Summary,
}

enum State {
    /// On the component stack, with its index.
    Open(u32),
    /// Closed in this pass.
    Done(Arc<Summary>),
}

type NodeId = (PathBytes, PathBytes, bool);

fn node_id(n: &Node) -> NodeId {
    (
        PathBytes(n.real.clone()),
        PathBytes(n.dir_real.clone()),
        n.embed,
    )
}

/// The closure of `root` (see the module documentation).
pub fn closure(ctx: &mut Ctx<'_>, root: Node) -> Result<Arc<Summary>, AnalysisError> {
    if ctx.budget.exceeded() {
        return Err(AnalysisError::Budget(ctx.budget.limit()));
    }
    let root_key = memo_key(ctx, &root);
    if let Some(s) = memo_hit(ctx, &root_key) {
        return Ok(s);
    }
    let mut state: HashMap<NodeId, State> = HashMap::default();
    // Members of components not yet complete, with their memo keys.
    let mut members: Vec<(u32, NodeId, MemoKey)> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut next_index = 0u32;
    let mut open = |ctx: &mut Ctx<'_>,
                    node: Node,
                    key: MemoKey,
                    state: &mut HashMap<NodeId, State>,
                    members: &mut Vec<(u32, NodeId, MemoKey)>,
                    frames: &mut Vec<Frame>|
     -> Result<(), AnalysisError> {
        let mut acc = own(ctx, &node);
        let edges = if node.embed {
            None
        } else {
            let e = ctx.edges(&node)?;
            acc.own_edges(ctx, &node, &e);
            Some(e)
        };
        let id = node_id(&node);
        state.insert(id.clone(), State::Open(next_index));
        members.push((next_index, id, key));
        frames.push(Frame {
            node,
            edges,
            next: 0,
            index: next_index,
            low: next_index,
            acc,
        });
        next_index += 1;
        Ok(())
    };
    open(ctx, root, root_key, &mut state, &mut members, &mut frames)?;
    loop {
        let top = frames.last_mut().expect("the root frame is popped last");
        let child = top
            .edges
            .as_ref()
            .and_then(|e| e.children.get(top.next))
            .cloned();
        if let Some(c) = child {
            top.next += 1;
            if ctx.budget.tick() {
                return Err(AnalysisError::Budget(ctx.budget.limit()));
            }
            let node = Node {
                real: c.real.clone(),
                dir_real: c.dir_real.clone(),
                text: ctx.child_text(&top.node, &c),
                embed: c.embed,
            };
            match state.get(&node_id(&node)) {
                Some(State::Open(i)) => {
                    let i = *i;
                    top.low = top.low.min(i);
                    let t = text_id(ctx, &node);
                    top.acc.texts.insert(t);
                    continue;
                }
                Some(State::Done(s)) => {
                    let s = s.clone();
                    let extra = own(ctx, &node);
                    top.acc.merge(&s);
                    top.acc.merge(&extra);
                    continue;
                }
                None => {}
            }
            let key = memo_key(ctx, &node);
            if let Some(s) = memo_hit(ctx, &key) {
                top.acc.merge(&s);
                state.insert(node_id(&node), State::Done(s));
                continue;
            }
            open(ctx, node, key, &mut state, &mut members, &mut frames)?;
            continue;
        }
        let f = frames.pop().expect("a frame is on the stack");
        if f.low < f.index {
            // Part of a component rooted further up: its parent collects for it.
            let parent = frames
                .last_mut()
                .expect("a node that is not a component root has a parent");
            parent.low = parent.low.min(f.low);
            parent.acc.merge(&f.acc);
            continue;
        }
        let summary = Arc::new(f.acc.finish());
        let at = members
            .iter()
            .rposition(|(i, _, _)| *i == f.index)
            .expect("a component root is on the member stack");
        for (_, id, key) in members.drain(at..) {
            state.insert(id, State::Done(summary.clone()));
            ctx.gen.closures.memo.insert(key, summary.clone());
        }
        match frames.last_mut() {
            Some(parent) => parent.acc.merge(&summary),
            None => return Ok(summary),
        }
    }
}
