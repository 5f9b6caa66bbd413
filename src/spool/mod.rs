//! The outgoing message spool: a dirq `QueueSimple` directory, the layout
//! that cASO writes, `ssmsend` reads and Python `dirq` 1.8 implements
//! (`dirq/QueueSimple.py`, `dirq/QueueBase.py`; spec `accounting.md` §3).
//! The appliance's writer and reader are interchangeable with cASO and
//! `ssmsend` on the same directory, in both directions.
//!
//! ```text
//! <queue>/
//!   <DDDDDDDD>/               8 hex: epoch seconds rounded down to the granularity (60 s)
//!     <SSSSSSSSMMMMMR>        element: 8 hex seconds, 5 hex microseconds, 1 hex digit per queue
//!     <SSSSSSSSMMMMMR>.tmp    element being written (dirq, cASO)
//!     <SSSSSSSSMMMMMR>.<pid>.tmp  element being written by the appliance
//!     <SSSSSSSSMMMMMR>.lck    lock: a hard link to the element
//! ```
//!
//! An element's name (the `empaid` of the AMS message) is `DDDDDDDD/SSSSSSSSMMMMMR`.
//! Names are lower-case hex; anything else in the tree is ignored, as dirq
//! does. Iteration order is directory name, then element name: chronological.
//!
//! **Adding** follows dirq: create `<dir>/<name>.<pid>.tmp` with `O_EXCL`
//! (mode `0666` under the umask), write, then hard-link it to a *fresh* name
//! in the same directory (retrying on `EEXIST`, so nothing is ever
//! overwritten) and unlink the temporary. Unlike dirq, the file and then the
//! directory are fsynced before `add` returns, so a spooled message survives
//! a crash, and the temporary carries the writer's pid: dirq (and its purge)
//! take any `*.tmp` for a temporary, and the next run of ours removes the
//! temporaries of a killed writer at once ([`QueueSimple::reclaim_temporaries`])
//! instead of after dirq's 300 s. Directories are `0777` under the umask. The
//! name depends on the time: the caller passes a [`Clock`].
//!
//! **Consuming** follows dirq too: [`QueueSimple::lock`] hard-links
//! `<element>.lck` (losing the race is `Ok(false)`, not an error) and touches
//! the element, whose mtime is then the lock's age; [`QueueSimple::get`] reads
//! the lock; [`QueueSimple::remove`] unlinks the element, then the lock;
//! [`QueueSimple::purge`] removes temporaries and locks older than given ages
//! (dirq: 300 s, 600 s) and empty intermediate directories except the newest;
//! [`QueueSimple::break_lock`] removes one lock that a killed run of ours
//! held, at once.

use std::ffi::CString;
use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TEMPORARY_SUFFIX: &str = ".tmp";
const LOCKED_SUFFIX: &str = ".lck";
/// dirq's default granularity of intermediate directories, seconds.
pub const DEFAULT_GRANULARITY: u32 = 60;
/// How many names `add` tries before giving up (each `EEXIST` moves on by at
/// least one microsecond, so this is only reached on a broken filesystem).
const MAX_NAME_ATTEMPTS: u32 = 10_000;

/// Where the time in element names comes from.
pub trait Clock {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

impl<F: Fn() -> SystemTime> Clock for F {
    fn now(&self) -> SystemTime {
        self()
    }
}

/// Why a spool operation failed. Each variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Creating the queue or an intermediate directory.
    #[error("creating spool directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Creating, writing or syncing an element's temporary file.
    #[error("writing spool element {path}: {source}")]
    Write {
        /// The temporary file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Publishing the temporary file under its element name.
    #[error("linking {from} to {to}: {source}")]
    Link {
        /// The temporary file.
        from: PathBuf,
        /// The element.
        to: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Listing the queue or an intermediate directory.
    #[error("listing spool directory {path}: {source}")]
    List {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Locking (link + touch) an element.
    #[error("locking spool element {path}: {source}")]
    Lock {
        /// The element.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Reading a locked element.
    #[error("reading spool element {path}: {source}")]
    Read {
        /// The lock file read.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Removing a file or directory.
    #[error("removing {path}: {source}")]
    Remove {
        /// What could not be removed.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// Syncing a directory after a change.
    #[error("syncing spool directory {path}: {source}")]
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A string that is not a dirq element name (`<8 hex>/<14 hex>`).
    #[error("{name:?} is not a spool element name (<8 hex>/<14 hex>)")]
    InvalidName {
        /// The rejected text.
        name: String,
    },
    /// `get`, `unlock` or `remove` on an element this process has not
    /// locked (or whose lock was purged as stale).
    #[error("spool element {name} is not locked")]
    NotLocked {
        /// The element.
        name: ElementName,
    },
    /// No free element name was found.
    #[error("no free element name in {dir} after {attempts} attempts")]
    NamesExhausted {
        /// The intermediate directory.
        dir: PathBuf,
        /// Names tried.
        attempts: u32,
    },
    /// [`QueueSimple::insert`]: another element already has this name.
    #[error("spool element {name} already exists with other content; nothing was overwritten")]
    NameTaken {
        /// The name.
        name: ElementName,
    },
}

/// An element's name, `DDDDDDDD/SSSSSSSSMMMMMR` (the AMS `empaid`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ElementName {
    dir: String,
    file: String,
}

impl ElementName {
    /// Parses `<8 lower-case hex>/<14 lower-case hex>`.
    pub fn parse(s: &str) -> Result<Self, SpoolError> {
        match s.split_once('/') {
            Some((dir, file)) if is_dir_name(dir) && is_element_name(file) => Ok(Self {
                dir: dir.to_string(),
                file: file.to_string(),
            }),
            _ => Err(SpoolError::InvalidName {
                name: s.to_string(),
            }),
        }
    }

    /// The intermediate directory, 8 hex digits.
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The element file, 14 hex digits.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// When the element was added: the time its name encodes.
    pub fn time(&self) -> SystemTime {
        let secs = u64::from_str_radix(&self.file[..8], 16).unwrap_or(0);
        let micros = u64::from_str_radix(&self.file[8..13], 16).unwrap_or(0);
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros.min(999_999))
    }
}

impl fmt::Display for ElementName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dir, self.file)
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// dirq's `^[0-9a-f]{8}$`.
fn is_dir_name(s: &str) -> bool {
    is_lower_hex(s, 8)
}

/// dirq's `^[0-9a-f]{14}$`.
fn is_element_name(s: &str) -> bool {
    is_lower_hex(s, 14)
}

/// How a queue is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Seconds covered by one intermediate directory (dirq: 60).
    pub granularity: u32,
    /// The hex digit ending every element name (dirq: random per queue
    /// object); `None` draws one.
    pub rndhex: Option<u8>,
    /// dirq's `umask` argument: `None` leaves permissions to the process
    /// umask (files `0666`, directories `0777` under it), `Some(mask)` makes
    /// them exactly `0666 & !mask` / `0777 & !mask`.
    pub umask: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            granularity: DEFAULT_GRANULARITY,
            rndhex: None,
            umask: None,
        }
    }
}

/// Age limits for [`QueueSimple::purge`]; zero disables that part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeAges {
    /// Temporaries older than this are removed (dirq: 300 s).
    pub max_temp: Duration,
    /// Locks older than this are removed, unlocking the element (dirq: 600 s).
    pub max_lock: Duration,
}

impl Default for PurgeAges {
    fn default() -> Self {
        Self {
            max_temp: Duration::from_secs(300),
            max_lock: Duration::from_secs(600),
        }
    }
}

/// What [`QueueSimple::purge`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    /// Stale temporaries removed (paths).
    pub temporaries: Vec<PathBuf>,
    /// Stale locks removed, i.e. elements unlocked.
    pub locks: Vec<ElementName>,
    /// Empty intermediate directories removed.
    pub dirs: Vec<String>,
}

/// A dirq `QueueSimple` directory.
#[derive(Debug)]
pub struct QueueSimple {
    root: PathBuf,
    rndhex: u8,
    granularity: u64,
    umask: Option<u32>,
    /// The last name's time (µs since the epoch) handed out by this handle:
    /// names never repeat or go backwards, even if the clock does (dirq
    /// relies on the clock moving; a test clock may stand still).
    last_name: AtomicU64,
}

impl QueueSimple {
    /// Opens the queue at `root`, creating it (and its parents) if needed.
    pub fn open(root: impl Into<PathBuf>, options: Options) -> Result<Self, SpoolError> {
        let queue = Self {
            root: root.into(),
            rndhex: options.rndhex.unwrap_or_else(rand::random::<u8>) % 16,
            granularity: u64::from(options.granularity.max(1)),
            umask: options.umask,
            last_name: AtomicU64::new(0),
        };
        if !queue.root.is_dir() {
            let mut builder = fs::DirBuilder::new();
            builder.recursive(true).mode(0o777);
            builder
                .create(&queue.root)
                .map_err(|source| SpoolError::CreateDir {
                    path: queue.root.clone(),
                    source,
                })?;
            queue.apply_dir_mode(&queue.root)?;
        }
        Ok(queue)
    }

    /// The queue directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Adds `data` as a new element and returns its name. The element is
    /// durable (file and directory fsynced) when this returns.
    pub fn add(&self, data: &[u8], clock: &dyn Clock) -> Result<ElementName, SpoolError> {
        let (secs, _) = epoch_parts(clock.now());
        let dir = format!("{:08x}", secs - secs % self.granularity);
        let dir_path = self.root.join(&dir);
        let exhausted = |dir_path: &Path| SpoolError::NamesExhausted {
            dir: dir_path.to_path_buf(),
            attempts: MAX_NAME_ATTEMPTS,
        };

        // 1. the temporary, with O_EXCL
        let mut tmp = dir_path.join(temporary_name(&self.next_name(clock)));
        let mut attempts = 0;
        let mut file = loop {
            attempts += 1;
            if attempts > MAX_NAME_ATTEMPTS {
                return Err(exhausted(&dir_path));
            }
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o666)
                .open(&tmp)
            {
                Ok(file) => break file,
                // the directory does not exist (yet, or was purged meanwhile)
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.make_intermediate_dir(&dir_path)?
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    tmp = dir_path.join(temporary_name(&self.next_name(clock)));
                }
                Err(source) => return Err(SpoolError::Write { path: tmp, source }),
            }
        };
        let written = (|| {
            if let Some(mask) = self.umask {
                file.set_permissions(Permissions::from_mode(0o666 & !mask))?;
            }
            file.write_all(data)?;
            file.sync_all()
        })();
        drop(file);
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(SpoolError::Write { path: tmp, source });
        }

        // 2. a fresh name, never overwriting (link fails on EEXIST)
        let mut attempts = 0;
        let name = loop {
            attempts += 1;
            if attempts > MAX_NAME_ATTEMPTS {
                let _ = fs::remove_file(&tmp);
                return Err(exhausted(&dir_path));
            }
            let file_name = self.next_name(clock);
            let target = dir_path.join(&file_name);
            match fs::hard_link(&tmp, &target) {
                Ok(()) => {
                    break ElementName {
                        dir,
                        file: file_name,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(SpoolError::Link {
                        from: tmp,
                        to: target,
                        source,
                    });
                }
            }
        };
        fs::remove_file(&tmp).map_err(|source| SpoolError::Remove {
            path: tmp.clone(),
            source,
        })?;
        sync_dir(&dir_path)?;
        Ok(name)
    }

    /// Adds `data` under exactly `name`: takes over an element of another
    /// dirq queue (a legacy spool), keeping its name, which is its age and
    /// its AMS `empaid`, so it is sent in its turn. Durable when this
    /// returns. `Ok(true)`: added; `Ok(false)`: an element of that name
    /// with the same bytes is already here (a repeated take-over); another
    /// element of that name is [`SpoolError::NameTaken`], and nothing is
    /// overwritten.
    pub fn insert(&self, name: &ElementName, data: &[u8]) -> Result<bool, SpoolError> {
        let added = self.insert_deferred(name, data)?;
        if added {
            self.sync(name.dir())?;
        }
        Ok(added)
    }

    /// [`QueueSimple::insert`] with the element's file synced but not its
    /// directory: after a run of these, [`QueueSimple::sync`] each
    /// directory before relying on them (one directory sync for many
    /// elements).
    pub fn insert_deferred(&self, name: &ElementName, data: &[u8]) -> Result<bool, SpoolError> {
        let dir_path = self.root.join(&name.dir);
        let target = dir_path.join(&name.file);
        if let Ok(existing) = fs::read(&target) {
            return if existing == data {
                Ok(false)
            } else {
                Err(SpoolError::NameTaken { name: name.clone() })
            };
        }
        let tmp = dir_path.join(temporary_name(&name.file));
        let mut file = loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o666)
                .open(&tmp)
            {
                Ok(file) => break file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.make_intermediate_dir(&dir_path)?
                }
                // left by an interrupted take-over of this very element
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => fs::remove_file(&tmp)
                    .map_err(|source| SpoolError::Remove {
                        path: tmp.clone(),
                        source,
                    })?,
                Err(source) => return Err(SpoolError::Write { path: tmp, source }),
            }
        };
        let written = (|| {
            if let Some(mask) = self.umask {
                file.set_permissions(Permissions::from_mode(0o666 & !mask))?;
            }
            file.write_all(data)?;
            file.sync_all()
        })();
        drop(file);
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(SpoolError::Write { path: tmp, source });
        }
        let linked = fs::hard_link(&tmp, &target);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SpoolError::NameTaken { name: name.clone() })
            }
            Err(source) => {
                return Err(SpoolError::Link {
                    from: tmp,
                    to: target,
                    source,
                })
            }
        }
        Ok(true)
    }

    /// Make the intermediate directory `dir`'s entries durable.
    pub fn sync(&self, dir: &str) -> Result<(), SpoolError> {
        sync_dir(&self.root.join(dir))
    }

    /// dirq's `_name()`: `%08x%05x%01x` of seconds, microseconds and
    /// rndhex, from the clock but strictly after the previous name.
    fn next_name(&self, clock: &dyn Clock) -> String {
        let (secs, micros) = epoch_parts(clock.now());
        let now = secs
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(micros));
        let prev = self
            .last_name
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .expect("the closure always returns Some");
        let t = now.max(prev + 1);
        format!(
            "{:08x}{:05x}{:01x}",
            t / 1_000_000,
            t % 1_000_000,
            self.rndhex
        )
    }

    fn make_intermediate_dir(&self, dir: &Path) -> Result<(), SpoolError> {
        match fs::DirBuilder::new().mode(0o777).create(dir) {
            Ok(()) => {
                self.apply_dir_mode(dir)?;
                sync_dir(&self.root)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(source) => Err(SpoolError::CreateDir {
                path: dir.to_path_buf(),
                source,
            }),
        }
    }

    fn apply_dir_mode(&self, dir: &Path) -> Result<(), SpoolError> {
        if let Some(mask) = self.umask {
            fs::set_permissions(dir, Permissions::from_mode(0o777 & !mask)).map_err(|source| {
                SpoolError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                }
            })?;
        }
        Ok(())
    }

    /// Intermediate directory names, sorted.
    fn dirs(&self) -> Result<Vec<String>, SpoolError> {
        let mut dirs = list(&self.root)?
            .into_iter()
            .filter(|n| is_dir_name(n))
            .collect::<Vec<_>>();
        dirs.sort();
        Ok(dirs)
    }

    /// All elements (locked or not, not temporaries) in dirq order: by
    /// directory, then by name. A snapshot: elements added meanwhile may or
    /// may not appear, removed ones are simply missing.
    pub fn names(&self) -> Result<Vec<ElementName>, SpoolError> {
        let mut out = Vec::new();
        for dir in self.dirs()? {
            let mut files = match list(&self.root.join(&dir)) {
                Ok(files) => files,
                Err(SpoolError::List { source, .. }) if is_gone(&source) => continue,
                Err(e) => return Err(e),
            };
            files.retain(|f| is_element_name(f));
            files.sort();
            out.extend(files.into_iter().map(|file| ElementName {
                dir: dir.clone(),
                file,
            }));
        }
        Ok(out)
    }

    /// Number of elements, locked or not (dirq `count()`).
    pub fn count(&self) -> Result<usize, SpoolError> {
        Ok(self.names()?.len())
    }

    fn element_path(&self, name: &ElementName) -> PathBuf {
        self.root.join(&name.dir).join(&name.file)
    }

    fn lock_path(&self, name: &ElementName) -> PathBuf {
        self.root
            .join(&name.dir)
            .join(format!("{}{LOCKED_SUFFIX}", name.file))
    }

    /// Locks an element: `Ok(false)` if it is already locked or gone (dirq's
    /// permissive mode). The element's mtime is set to now: the lock's age
    /// for [`QueueSimple::purge`].
    pub fn lock(&self, name: &ElementName) -> Result<bool, SpoolError> {
        let path = self.element_path(name);
        let lock = self.lock_path(name);
        match fs::hard_link(&path, &lock) {
            Ok(()) => {}
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    || e.kind() == io::ErrorKind::NotFound =>
            {
                return Ok(false)
            }
            Err(source) => return Err(SpoolError::Lock { path, source }),
        }
        match touch(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // removed by someone else between link and touch
                let _ = fs::remove_file(&lock);
                Ok(false)
            }
            Err(source) => Err(SpoolError::Lock { path, source }),
        }
    }

    /// Unlocks an element locked by [`QueueSimple::lock`].
    pub fn unlock(&self, name: &ElementName) -> Result<(), SpoolError> {
        let lock = self.lock_path(name);
        fs::remove_file(&lock).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                SpoolError::NotLocked { name: name.clone() }
            } else {
                SpoolError::Remove {
                    path: lock.clone(),
                    source,
                }
            }
        })
    }

    /// The contents of a locked element (read through its lock, as dirq).
    pub fn get(&self, name: &ElementName) -> Result<Vec<u8>, SpoolError> {
        let lock = self.lock_path(name);
        fs::read(&lock).map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                SpoolError::NotLocked { name: name.clone() }
            } else {
                SpoolError::Read {
                    path: lock.clone(),
                    source,
                }
            }
        })
    }

    /// Removes a locked element: the element, then its lock (dirq order),
    /// then syncs the directory so a sent message is not sent again after a
    /// crash.
    pub fn remove(&self, name: &ElementName) -> Result<(), SpoolError> {
        let path = self.element_path(name);
        let lock = self.lock_path(name);
        if !lock.exists() {
            return Err(SpoolError::NotLocked { name: name.clone() });
        }
        fs::remove_file(&path).map_err(|source| SpoolError::Remove {
            path: path.clone(),
            source,
        })?;
        fs::remove_file(&lock).map_err(|source| SpoolError::Remove {
            path: lock.clone(),
            source,
        })?;
        sync_dir(&self.root.join(&name.dir))
    }

    /// Removes the temporaries a killed writer of ours left: those whose
    /// pid ([`temporary_owner`]) no longer runs. The temporaries of other
    /// writers (dirq's `<name>.tmp`: cASO, an older appliance) are left to
    /// the age rule of [`QueueSimple::purge`], as dirq does, since their
    /// writer may still be at work. Returns the files removed.
    pub fn reclaim_temporaries(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let mut removed = Vec::new();
        for dir in self.dirs()? {
            let dir_path = self.root.join(&dir);
            let files = match list(&dir_path) {
                Ok(files) => files,
                Err(SpoolError::List { source, .. }) if is_gone(&source) => continue,
                Err(e) => return Err(e),
            };
            for file in files {
                let Some(pid) = temporary_owner(&file) else {
                    continue;
                };
                if crate::state::process_running(pid) {
                    continue;
                }
                let path = dir_path.join(&file);
                match fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => return Err(SpoolError::Remove { path, source }),
                }
            }
        }
        Ok(removed)
    }

    /// Removes the lock of `name` if it was taken no later than `taken_by`
    /// (a lock's time is the mtime [`QueueSimple::lock`] gives the element,
    /// shared by the lock, which is the same file): the lock a killed run of
    /// ours held, which dirq would keep for 600 s. A lock taken later is
    /// someone else's and stays. `Ok(true)` when a lock was removed (the
    /// element, if still there, is unlocked; a lock whose element was
    /// already removed is garbage).
    pub fn break_lock(&self, name: &ElementName, taken_by: SystemTime) -> Result<bool, SpoolError> {
        let lock = self.lock_path(name);
        let mtime = match fs::metadata(&lock).and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(source) => return Err(SpoolError::List { path: lock, source }),
        };
        if mtime > taken_by {
            return Ok(false);
        }
        match fs::remove_file(&lock) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(SpoolError::Remove { path: lock, source }),
        }
    }

    /// dirq's `purge`: removes temporaries older than `ages.max_temp` and
    /// locks older than `ages.max_lock` (by mtime, against `clock`), then
    /// every empty intermediate directory except the newest.
    pub fn purge(&self, clock: &dyn Clock, ages: &PurgeAges) -> Result<PurgeReport, SpoolError> {
        let now = clock.now();
        let cutoff =
            |age: Duration| (!age.is_zero()).then(|| now.checked_sub(age).unwrap_or(UNIX_EPOCH));
        let (old_temp, old_lock) = (cutoff(ages.max_temp), cutoff(ages.max_lock));
        let mut report = PurgeReport::default();
        let dirs = self.dirs()?;
        if old_temp.is_some() || old_lock.is_some() {
            for dir in &dirs {
                let dir_path = self.root.join(dir);
                let files = match list(&dir_path) {
                    Ok(files) => files,
                    Err(SpoolError::List { source, .. }) if is_gone(&source) => continue,
                    Err(e) => return Err(e),
                };
                for file in files {
                    let (limit, is_lock) = if file.ends_with(TEMPORARY_SUFFIX) {
                        (old_temp, false)
                    } else if file.ends_with(LOCKED_SUFFIX) {
                        (old_lock, true)
                    } else {
                        continue;
                    };
                    let Some(limit) = limit else { continue };
                    let path = dir_path.join(&file);
                    let mtime = match fs::metadata(&path).and_then(|m| m.modified()) {
                        Ok(t) => t,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(source) => return Err(SpoolError::List { path, source }),
                    };
                    if mtime >= limit {
                        continue;
                    }
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(source) => return Err(SpoolError::Remove { path, source }),
                    }
                    if is_lock {
                        let stem = &file[..file.len() - LOCKED_SUFFIX.len()];
                        if is_element_name(stem) {
                            report.locks.push(ElementName {
                                dir: dir.clone(),
                                file: stem.to_string(),
                            });
                        }
                    } else {
                        report.temporaries.push(path);
                    }
                }
            }
        }
        if let Some((_newest, older)) = dirs.split_last() {
            for dir in older {
                let path = self.root.join(dir);
                match fs::read_dir(&path).map(|mut it| it.next().is_none()) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) if is_gone(&e) => continue,
                    Err(source) => return Err(SpoolError::List { path, source }),
                }
                match fs::remove_dir(&path) {
                    Ok(()) => report.dirs.push(dir.clone()),
                    // gone, or an element arrived meanwhile
                    Err(e) if is_gone(&e) || e.raw_os_error() == Some(libc::ENOTEMPTY) => {}
                    Err(source) => return Err(SpoolError::Remove { path, source }),
                }
            }
        }
        Ok(report)
    }
}

/// `<name>.<pid>.tmp`: the temporary of element `name` written by this
/// process.
fn temporary_name(name: &str) -> String {
    format!("{name}.{}{TEMPORARY_SUFFIX}", std::process::id())
}

/// The writer's pid of an element temporary the appliance made
/// (`<14 hex>.<pid>.tmp`); `None` for dirq's `<14 hex>.tmp` and for
/// anything else.
pub fn temporary_owner(file: &str) -> Option<u32> {
    let (name, pid) = file.strip_suffix(TEMPORARY_SUFFIX)?.split_once('.')?;
    if !is_element_name(name) || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether `file` is an element temporary: dirq's `<14 hex>.tmp` or the
/// appliance's `<14 hex>.<pid>.tmp`.
pub fn is_temporary(file: &str) -> bool {
    temporary_owner(file).is_some()
        || file
            .strip_suffix(TEMPORARY_SUFFIX)
            .is_some_and(is_element_name)
}

/// Whole seconds and microseconds since the epoch (0 before it).
fn epoch_parts(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_micros())
}

fn is_gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// Names in a directory (non-UTF-8 names cannot be dirq names and are skipped).
fn list(dir: &Path) -> Result<Vec<String>, SpoolError> {
    let err = |source| SpoolError::List {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(err)? {
        if let Ok(name) = entry.map_err(err)?.file_name().into_string() {
            out.push(name);
        }
    }
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| SpoolError::SyncDir {
            path: dir.to_path_buf(),
            source,
        })
}

/// `os.utime(path, None)`: both times set to now by the kernel, which needs
/// only write permission (not ownership), as in dirq.
fn touch(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path; a null `times` means "now".
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u32) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(u64::from(micros))
    }

    #[test]
    fn names_like_dirq() {
        let tmp = tempfile::tempdir().unwrap();
        let q = QueueSimple::open(
            tmp.path(),
            Options {
                rndhex: Some(0xa),
                ..Options::default()
            },
        )
        .unwrap();
        let clock = || at(0x6b02_e264, 0x70f5e);
        assert_eq!(q.next_name(&clock), "6b02e26470f5ea");
        // a clock that does not move still yields fresh, increasing names
        assert_eq!(q.next_name(&clock), "6b02e26470f5fa");
        let clock = || at(0x6b02_e264, 999_999);
        assert_eq!(q.next_name(&clock), "6b02e264f423fa");
        assert_eq!(q.next_name(&clock), "6b02e26500000a");
        // a clock going backwards does not make names go backwards
        assert_eq!(q.next_name(&|| at(1, 0)), "6b02e26500001a");
    }

    #[test]
    fn insert_keeps_the_name_and_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let q = QueueSimple::open(tmp.path(), Options::default()).unwrap();
        let n = ElementName::parse("5ec2a3c0/5ec2a3c4012340").unwrap();
        assert!(q.insert(&n, b"one").unwrap());
        assert!(!q.insert(&n, b"one").unwrap(), "same bytes: already there");
        assert!(matches!(
            q.insert(&n, b"two"),
            Err(SpoolError::NameTaken { .. })
        ));
        assert_eq!(q.names().unwrap(), vec![n.clone()]);
        assert!(q.lock(&n).unwrap());
        assert_eq!(q.get(&n).unwrap(), b"one");
        assert_eq!(
            n.time(),
            UNIX_EPOCH + Duration::from_secs(0x5ec2_a3c4) + Duration::from_micros(0x01234)
        );
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("5ec2a3c0"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|f| f.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn temporaries_carry_the_writers_pid() {
        let t = temporary_name("6b02e26470f5e0");
        assert_eq!(t, format!("6b02e26470f5e0.{}.tmp", std::process::id()));
        assert_eq!(temporary_owner(&t), Some(std::process::id()));
        assert!(is_temporary(&t));
        assert_eq!(temporary_owner("6b02e26470f5e0.tmp"), None);
        assert!(is_temporary("6b02e26470f5e0.tmp"));
        for other in [
            "6b02e26470f5e0",
            "6b02e26470f5e0.lck",
            "x.12.tmp",
            "6b02e26470f5e0..tmp",
            "6b02e26470f5e0.+1.tmp",
        ] {
            assert_eq!(temporary_owner(other), None, "{other}");
        }
        assert!(!is_temporary("6b02e26470f5e0.lck"));
    }

    #[test]
    fn reclaim_and_break_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let q = QueueSimple::open(tmp.path(), Options::default()).unwrap();
        let n = q.add(b"m", &SystemClock).unwrap();
        let dir = tmp.path().join(n.dir());
        // a killed writer of ours (pid 0 runs nothing), a live one (us), dirq's
        std::fs::write(dir.join("6b02e26470f5e0.0.tmp"), b"half").unwrap();
        let live = dir.join(temporary_name("6b02e26470f5e1"));
        std::fs::write(&live, b"being written").unwrap();
        std::fs::write(dir.join("6b02e26470f5e2.tmp"), b"cASO").unwrap();
        assert_eq!(
            q.reclaim_temporaries().unwrap(),
            vec![dir.join("6b02e26470f5e0.0.tmp")]
        );
        assert!(live.exists() && dir.join("6b02e26470f5e2.tmp").exists());

        assert!(q.lock(&n).unwrap());
        let before = SystemTime::now() - Duration::from_secs(60);
        assert!(!q.break_lock(&n, before).unwrap(), "taken later: not ours");
        assert!(q
            .break_lock(&n, SystemTime::now() + Duration::from_secs(1))
            .unwrap());
        assert!(
            !q.break_lock(&n, SystemTime::now()).unwrap(),
            "already gone"
        );
        assert!(q.lock(&n).unwrap(), "unlocked");
    }

    #[test]
    fn element_name_parsing() {
        let n = ElementName::parse("6b02e264/6b02e26470f5e0").unwrap();
        assert_eq!((n.dir(), n.file()), ("6b02e264", "6b02e26470f5e0"));
        assert_eq!(n.to_string(), "6b02e264/6b02e26470f5e0");
        for bad in [
            "6b02e264",
            "6B02E264/6b02e26470f5e0",
            "6b02e264/6b02e26470f5e0.lck",
            "../x/6b02e26470f5e0",
            "",
        ] {
            assert!(
                matches!(ElementName::parse(bad), Err(SpoolError::InvalidName { .. })),
                "{bad}"
            );
        }
    }
}
