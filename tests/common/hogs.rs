//! Busy threads that hold the CPUs for a test: a gateway's own workers, or a loaded machine.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

/// Starts `per_cpu` spinning threads for each CPU this process may run on; they stop once
/// `stop` is set (join them then).
pub fn spawn(per_cpu: usize, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    let cpus = warden::config::available_cpus().len();
    (0..cpus * per_cpu)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect()
}
