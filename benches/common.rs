//! The design warden replaces, as a same-run baseline: a `Mutex<HashMap>` verdict cache behind a
//! pool of worker threads fed by a channel, each request answered over its own reply channel.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use warden::cache::CacheKey;
use warden::{Request, Verdict};

pub struct PoolBaseline {
    tx: Option<mpsc::Sender<(Vec<u8>, mpsc::SyncSender<Verdict>)>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl PoolBaseline {
    pub fn new(threads: usize) -> PoolBaseline {
        let cache: Arc<Mutex<HashMap<u128, Verdict>>> = Arc::new(Mutex::new(HashMap::new()));
        let (tx, rx) = mpsc::channel::<(Vec<u8>, mpsc::SyncSender<Verdict>)>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..threads)
            .map(|_| {
                let (rx, cache) = (rx.clone(), cache.clone());
                std::thread::spawn(move || loop {
                    let job = rx.lock().unwrap().recv();
                    let Ok((wire, reply)) = job else { return };
                    let v = lookup_or_compute(&cache, &wire);
                    let _ = reply.send(v);
                })
            })
            .collect();
        PoolBaseline {
            tx: Some(tx),
            workers,
        }
    }

    pub fn validate(&self, req: &Request<'_>) -> Verdict {
        let mut wire = vec![0u8; req.encoded_len()];
        req.encode(&mut wire).unwrap();
        let (rtx, rrx) = mpsc::sync_channel(1);
        self.tx.as_ref().unwrap().send((wire, rtx)).unwrap();
        rrx.recv().unwrap()
    }
}

impl Drop for PoolBaseline {
    fn drop(&mut self) {
        self.tx.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The keyed hashes the benches' keys are made with (one instance, so a key computed in one
/// place finds the entry made in another).
pub static KEYED: std::sync::LazyLock<warden::keyed::KeyedHash> =
    std::sync::LazyLock::new(warden::keyed::KeyedHash::random);

/// The baseline's cache step: key the request, look it up under the lock, compute on a miss.
pub fn lookup_or_compute(cache: &Mutex<HashMap<u128, Verdict>>, wire: &[u8]) -> Verdict {
    let req = Request::decode(wire).unwrap();
    let key = CacheKey::from_wire(&KEYED, wire, req.classification, req.tenant);
    let mut c = cache.lock().unwrap();
    *c.entry(key.hash).or_insert_with(|| Verdict {
        decision: warden::Decision::Allow,
        ..Verdict::deny(warden::DenyReason::None)
    })
}
