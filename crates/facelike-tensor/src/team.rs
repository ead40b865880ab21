//! A low-latency parallel loop for the many small steps of one sample's forward pass.
//!
//! One face through the ResNet is some 60 parallel steps of 20–300 µs each. Rayon's idle
//! workers go to sleep between such steps and take tens of microseconds to wake, and a step
//! waits for its slowest piece, so on two cores one face ran no faster on two threads than
//! on one. Here the calling thread publishes a step and starts on its pieces at once;
//! helper threads, which spin briefly between steps before they park, claim pieces from the
//! same counter. The caller waits only for pieces a helper has already claimed, so a helper
//! that is asleep or descheduled (a busy machine) costs nothing but its share of the work.
//!
//! Helpers: one fewer than the machine's cores, started on first use; a loop takes as many as
//! the calling rayon pool has threads besides the caller (so `RAYON_NUM_THREADS` and
//! `ThreadPool::install` limit it as they limit rayon). Concurrent callers do not queue:
//! whoever finds the team busy runs its loop alone.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// One published loop. `body` points at the caller's closure, which outlives every call
/// through it: the caller returns only once `done == tasks`, and no piece can be claimed
/// after `next` passes `tasks`.
struct Job {
    body: *const (dyn Fn(usize) + Sync),
    tasks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    panicked: AtomicBool,
    /// Helpers that may still join (the caller's rayon pool size, less the caller).
    seats: AtomicUsize,
}

// SAFETY: `body` is only called for claimed pieces, while the caller waits (see `Job`); the
// closure itself is `Sync`.
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

impl Job {
    /// Claims and runs pieces until none are left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.tasks {
                return;
            }
            // SAFETY: piece i was claimed before `done` reached `tasks`, so the caller is
            // still waiting and the closure alive.
            let body = unsafe { &*self.body };
            if catch_unwind(AssertUnwindSafe(|| body(i))).is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

struct Team {
    helpers: usize,
    /// Held by the caller whose loop is published.
    busy: Mutex<()>,
    /// The current job and its number; helpers watch `generation`.
    slot: Mutex<Option<Arc<Job>>>,
    generation: AtomicU64,
    wake: Condvar,
    /// Helpers waiting on `wake` (changed under `slot`'s lock): publishing a step wakes
    /// them only when there are some, sparing a system call per step while they spin.
    parked: AtomicUsize,
}

/// How long a helper keeps looking for the next step before it parks: longer than the
/// serial stretches between the steps of one face (pooling, copies), so that it is awake
/// for the next step; short enough not to hold a core long after the last.
const SPIN: Duration = Duration::from_millis(2);

fn team() -> &'static Team {
    static TEAM: OnceLock<&'static Team> = OnceLock::new();
    TEAM.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let helpers = cores.saturating_sub(1).min(63);
        let team: &'static Team = Box::leak(Box::new(Team {
            helpers,
            busy: Mutex::new(()),
            slot: Mutex::new(None),
            generation: AtomicU64::new(0),
            wake: Condvar::new(),
            parked: AtomicUsize::new(0),
        }));
        for i in 0..helpers {
            let spawned = std::thread::Builder::new()
                .name(format!("facelike-team-{i}"))
                .spawn(move || helper(team));
            if spawned.is_err() {
                // Fewer helpers only means less parallelism: the callers do the work.
                break;
            }
        }
        team
    })
}

fn helper(team: &'static Team) {
    let mut seen = 0u64;
    loop {
        // Spin a little for the next step, then park until one is published.
        let start = Instant::now();
        'spin: while start.elapsed() < SPIN {
            for _ in 0..256 {
                if team.generation.load(Ordering::Acquire) != seen {
                    break 'spin;
                }
                std::hint::spin_loop();
            }
        }
        let job = {
            let mut slot = team.slot.lock().unwrap_or_else(|e| e.into_inner());
            if team.generation.load(Ordering::Acquire) == seen {
                team.parked.fetch_add(1, Ordering::SeqCst);
                while team.generation.load(Ordering::Acquire) == seen {
                    slot = team.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
                }
                team.parked.fetch_sub(1, Ordering::SeqCst);
            }
            seen = team.generation.load(Ordering::Acquire);
            slot.clone()
        };
        if let Some(job) = job {
            let seated = job
                .seats
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| s.checked_sub(1))
                .is_ok();
            if seated {
                job.work();
            }
        }
    }
}

/// Runs `body(0)`, …, `body(tasks − 1)`, on the calling thread and the team's helpers when
/// `parallel` (else in order on this thread). Each piece runs exactly once; which thread
/// runs which is unspecified. A panicking piece is re-raised here after all have finished.
pub(crate) fn parallel_for(tasks: usize, parallel: bool, body: &(dyn Fn(usize) + Sync)) {
    run(tasks, parallel, false, body)
}

/// [`parallel_for`] for loops of large pieces (milliseconds each, as a detector's image
/// pyramid gives): always shared with the helpers, even on a crowded machine, where a late
/// helper costs little against such pieces; and not counted in the crowding measure.
pub(crate) fn parallel_for_coarse(tasks: usize, body: &(dyn Fn(usize) + Sync)) {
    run(tasks, true, true, body)
}

fn run(tasks: usize, parallel: bool, coarse: bool, body: &(dyn Fn(usize) + Sync)) {
    let seats = rayon::current_num_threads().saturating_sub(1);
    if !parallel || tasks <= 1 || seats == 0 || (!coarse && skip_while_crowded()) {
        (0..tasks).for_each(body);
        return;
    }
    let team = team();
    let guard = match team.busy.try_lock() {
        Ok(g) if team.helpers > 0 => g,
        _ => {
            (0..tasks).for_each(body);
            return;
        }
    };
    // SAFETY (lifetime): the job's pointer is only used while this call waits below.
    let body: *const (dyn Fn(usize) + Sync + '_) = body;
    let body: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(body) };
    let job = Arc::new(Job {
        body,
        tasks,
        next: AtomicUsize::new(0),
        done: AtomicUsize::new(0),
        panicked: AtomicBool::new(false),
        seats: AtomicUsize::new(seats),
    });
    {
        let mut slot = team.slot.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(Arc::clone(&job));
        team.generation.fetch_add(1, Ordering::Release);
    }
    // A helper counts itself parked, and checks the generation, under the slot's lock: one
    // that parks after the publication above sees the new generation and does not wait.
    if team.parked.load(Ordering::SeqCst) > 0 {
        team.wake.notify_all();
    }
    let start = Instant::now();
    // The thread's CPU clock is a system call (some 0.6 µs in a virtual machine, against
    // steps of 20–300 µs): read it around one loop in `SAMPLE`.
    let sampled = !coarse && LOOPS.fetch_add(1, Ordering::Relaxed).is_multiple_of(SAMPLE);
    let cpu_start = if sampled { thread_cpu_time() } else { None };
    job.work();
    let own = start.elapsed();
    let cpu = cpu_start.and_then(|a| Some(thread_cpu_time()?.saturating_sub(a)));
    // Wait for pieces the helpers claimed: spin, then yield the core.
    let mut spins = 0u32;
    while job.done.load(Ordering::Acquire) < tasks {
        if spins < 1 << 14 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
        }
    }
    if !coarse {
        note_share(own, cpu, start.elapsed().saturating_sub(own));
    }
    *team.slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
    drop(guard);
    if job.panicked.load(Ordering::Relaxed) {
        resume_unwind(Box::new("a parallel_for piece panicked"));
    }
}

/// Loops still to run alone before trying the helpers again.
static SKIP: AtomicUsize = AtomicUsize::new(0);
/// Wall nanoseconds of the caller's own share, and CPU nanoseconds of the sampled loops'
/// shares, summed over the current window.
static WINDOW_WALL: AtomicU64 = AtomicU64::new(0);
static WINDOW_CPU: AtomicU64 = AtomicU64::new(0);
/// Wall nanoseconds of the loops whose CPU time was read, over the current window.
static WINDOW_SAMPLED_WALL: AtomicU64 = AtomicU64::new(0);
/// Loops run with the helpers, and one in how many has the caller's CPU time read.
static LOOPS: AtomicUsize = AtomicUsize::new(0);
const SAMPLE: usize = 8;
/// Nanoseconds the caller then waited for helpers' pieces, over the current window.
static WINDOW_WAIT: AtomicU64 = AtomicU64::new(0);
static WINDOW_LOOPS: AtomicUsize = AtomicUsize::new(0);
/// Whether the last window looked crowded.
static LAST_CROWDED: AtomicBool = AtomicBool::new(false);
/// Loops per measurement window, and loops run alone after a crowded window.
const WINDOW: usize = 48;
const ALONE: usize = 512;

/// Whether to run this loop alone. On a machine busy with other work, more threads than
/// free cores means each of ours gets a slice of a core: the caller is descheduled mid-step,
/// waits a time slice for a descheduled helper's piece, and the helpers' spinning takes
/// cycles from it. So the caller watches how much of its own share's wall time it actually
/// ran (read on one loop in `SAMPLE`), and how long it then waited for helpers; when it ran less than 3/4 of the time, or
/// waited more than a quarter as long as it worked, over two windows in a row, it works
/// alone for a while, then tries again. (Two: a single stall of a millisecond or so, as a
/// virtual machine's host gives now and then, can outweigh a whole window of good loops; a
/// busy machine stalls the team window after window.)
fn skip_while_crowded() -> bool {
    SKIP.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| s.checked_sub(1))
        .is_ok()
}

/// Records the caller's share (`wall` elapsed, `cpu` of it spent running, where it was
/// read) and how long it then `waited` for the helpers.
fn note_share(wall: Duration, cpu: Option<Duration>, waited: Duration) {
    WINDOW_WALL.fetch_add(wall.as_nanos() as u64, Ordering::Relaxed);
    WINDOW_WAIT.fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
    if let Some(cpu) = cpu {
        WINDOW_SAMPLED_WALL.fetch_add(wall.as_nanos() as u64, Ordering::Relaxed);
        WINDOW_CPU.fetch_add(cpu.as_nanos() as u64, Ordering::Relaxed);
    }
    if WINDOW_LOOPS.fetch_add(1, Ordering::Relaxed) + 1 >= WINDOW {
        let wall = WINDOW_WALL.swap(0, Ordering::Relaxed);
        let sampled = WINDOW_SAMPLED_WALL.swap(0, Ordering::Relaxed);
        let cpu = WINDOW_CPU.swap(0, Ordering::Relaxed);
        let waited = WINDOW_WAIT.swap(0, Ordering::Relaxed);
        WINDOW_LOOPS.store(0, Ordering::Relaxed);
        // Descheduled ourselves, or kept waiting by descheduled helpers.
        let crowded = (sampled > 0 && cpu.saturating_mul(4) < sampled.saturating_mul(3))
            || waited.saturating_mul(4) > wall;
        if LAST_CROWDED.swap(crowded, Ordering::Relaxed) && crowded {
            SKIP.store(ALONE, Ordering::Relaxed);
        }
    }
}

/// CPU time of the calling thread, where the platform tells it.
fn thread_cpu_time() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, t: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut t = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `t` is a valid, writable timespec for the duration of the call.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
        (rc == 0).then(|| Duration::new(t.sec as u64, t.nsec as u32))
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// [`parallel_for`] over consecutive `chunk`-float pieces of `data` (the last may be
/// shorter), passing each piece's index and slice.
pub(crate) fn parallel_chunks_mut(
    data: &mut [f32],
    chunk: usize,
    parallel: bool,
    body: &(dyn Fn(usize, &mut [f32]) + Sync),
) {
    // Big arrays (a detector's planes) are coarse work.
    let coarse = parallel && data.len() >= 1 << 18;
    if data.is_empty() || chunk == 0 {
        return;
    }
    let len = data.len();
    let base = ChunkPtr(data.as_mut_ptr());
    run(len.div_ceil(chunk), parallel, coarse, &|i| {
        let start = i * chunk;
        let n = chunk.min(len - start);
        // SAFETY: pieces are disjoint ranges of `data`, which outlives the loop.
        let piece = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), n) };
        body(i, piece);
    });
}

#[derive(Clone, Copy)]
struct ChunkPtr(*mut f32);
// SAFETY: used only for disjoint pieces (see `parallel_chunks_mut`).
unsafe impl Send for ChunkPtr {}
unsafe impl Sync for ChunkPtr {}
impl ChunkPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_piece_runs_once_even_from_many_callers() {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for round in 0..200 {
                        let n = 1 + (round * 7 + t) % 50;
                        let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                        parallel_for(n, true, &|i| {
                            hits[i].fetch_add(1, Ordering::Relaxed);
                        });
                        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn a_panicking_piece_is_reraised() {
        let r = catch_unwind(|| {
            parallel_for(8, true, &|i| {
                if i == 5 {
                    panic!("piece 5");
                }
            })
        });
        assert!(r.is_err());
        // The team still works afterwards.
        let count = AtomicUsize::new(0);
        parallel_for(16, true, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 16);
    }
}
