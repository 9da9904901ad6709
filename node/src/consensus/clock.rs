//! Where consensus reads the time: the system's clocks in a node, a clock the test moves in
//! tests (so a test that needs two seconds to pass advances it instead of sleeping).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The time as an engine sees it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Milliseconds since the Unix epoch: block times, and how far ahead a proposal may be.
    fn unix_ms(&self) -> u64;
    /// A monotonic instant: how long a peer has left a request unanswered.
    fn now(&self) -> Instant;
}

/// The operating system's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    start_ms: u64,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// Stopped at the system's time now.
    pub fn new() -> Self {
        Self { start: Instant::now(), start_ms: SystemClock.unix_ms(), elapsed: Mutex::default() }
    }

    /// Moves it `by` forward.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut elapsed) = self.elapsed.lock() {
            *elapsed += by;
        }
    }

    fn elapsed(&self) -> Duration {
        self.elapsed.lock().map_or(Duration::ZERO, |e| *e)
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn unix_ms(&self) -> u64 {
        self.start_ms + self.elapsed().as_millis() as u64
    }

    fn now(&self) -> Instant {
        self.start + self.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::new();
        let (at, ms) = (clock.now(), clock.unix_ms());
        assert_eq!((clock.now(), clock.unix_ms()), (at, ms));
        clock.advance(Duration::from_millis(2_100));
        assert_eq!(clock.now() - at, Duration::from_millis(2_100));
        assert_eq!(clock.unix_ms() - ms, 2_100);
    }
}
