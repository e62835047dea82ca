//! Stopping a decode from outside: when its client has gone, or when it has
//! run longer than `limits.decode_seconds`. Decoders cannot be interrupted
//! directly, so the check runs wherever the pipeline has control: between
//! GIF frames, and on every read a streaming decoder makes of its input.

use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::ImagingError;

/// When a decode must give up.
#[derive(Debug, Clone)]
pub struct Stop {
    cancelled: Option<Arc<AtomicBool>>,
    deadline: Option<(Instant, Duration)>,
}

impl Stop {
    /// Never stops (benchmarks, tests, commands run by an operator).
    pub fn never() -> Self {
        Self {
            cancelled: None,
            deadline: None,
        }
    }

    /// Stops once `cancelled` turns true or `within` has passed from now.
    pub fn new(cancelled: Arc<AtomicBool>, within: Duration) -> Self {
        Self {
            cancelled: Some(cancelled),
            deadline: Some((Instant::now() + within, within)),
        }
    }

    /// An error when the decode must stop now.
    pub fn check(&self) -> Result<(), ImagingError> {
        if self
            .cancelled
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
        {
            return Err(ImagingError::Cancelled);
        }
        if let Some((at, within)) = self.deadline
            && Instant::now() >= at
        {
            return Err(ImagingError::TimedOut {
                millis: u64::try_from(within.as_millis()).unwrap_or(u64::MAX),
            });
        }
        Ok(())
    }
}

/// Small reads between two looks at the clock. The JPEG decoder reads its
/// entropy-coded data a byte at a time, and reading the clock on each of
/// five million bytes would cost more than the resize; a read of a chunk
/// (PNG, WebP, a GIF frame) and every `fill_buf` look at it at once.
const READS_PER_CLOCK: u32 = 256;

/// A read at least this long is a chunk, not a byte-at-a-time read.
const CHUNK: usize = 256;

/// A reader that fails once its decode must stop, so a streaming decoder
/// (PNG, WebP, JPEG between and within scans) ends within a few reads
/// instead of running on. Cancellation is seen at the next read; the
/// deadline at the next chunk read or `fill_buf`, and within
/// `READS_PER_CLOCK` small reads.
pub struct Interruptible<R> {
    inner: R,
    stop: Stop,
    reads: u32,
}

impl<R> Interruptible<R> {
    pub fn new(inner: R, stop: Stop) -> Self {
        Self {
            inner,
            stop,
            reads: 0,
        }
    }

    fn check(&mut self, chunk: bool) -> io::Result<()> {
        if let Some(cancelled) = &self.stop.cancelled
            && cancelled.load(Ordering::Relaxed)
        {
            return Err(io::Error::other(ImagingError::Cancelled));
        }
        self.reads = self.reads.wrapping_add(1);
        if chunk || self.reads % READS_PER_CLOCK == 1 {
            self.stop.check().map_err(io::Error::other)?;
        }
        Ok(())
    }
}

impl<R: Read> Read for Interruptible<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check(buf.len() >= CHUNK)?;
        self.inner.read(buf)
    }
}

impl<R: BufRead> BufRead for Interruptible<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check(true)?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
    }
}

impl<R: Seek> Seek for Interruptible<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_or_late_decode_stops_at_its_next_read() {
        let flag = Arc::new(AtomicBool::new(false));
        let stop = Stop::new(Arc::clone(&flag), Duration::from_secs(60));
        let mut reader = Interruptible::new(io::Cursor::new(vec![1u8; 64]), stop.clone());
        let mut buf = [0u8; 8];
        assert_eq!(reader.read(&mut buf).unwrap(), 8);
        flag.store(true, Ordering::Relaxed);
        assert!(reader.read(&mut buf).is_err());
        assert_eq!(stop.check(), Err(ImagingError::Cancelled));

        let late = Stop::new(Arc::new(AtomicBool::new(false)), Duration::ZERO);
        assert_eq!(late.check(), Err(ImagingError::TimedOut { millis: 0 }));
        let mut reader = Interruptible::new(io::Cursor::new(vec![1u8; 1024]), late);
        assert!(
            reader.read(&mut buf).is_err(),
            "the first read looks at the clock"
        );

        // A deadline that passes mid-decode is seen within READS_PER_CLOCK reads.
        let soon = Stop::new(Arc::new(AtomicBool::new(false)), Duration::from_millis(20));
        let mut reader = Interruptible::new(io::Cursor::new(vec![1u8; 4096]), soon);
        assert_eq!(reader.read(&mut buf[..1]).unwrap(), 1);
        std::thread::sleep(Duration::from_millis(30));
        let reads_after = (0..=READS_PER_CLOCK)
            .position(|_| reader.read(&mut buf[..1]).is_err())
            .expect("the deadline stops the reader");
        assert!(reads_after < READS_PER_CLOCK as usize, "{reads_after}");
        // A chunk read sees it at once.
        let soon = Stop::new(Arc::new(AtomicBool::new(false)), Duration::from_millis(20));
        let mut reader = Interruptible::new(io::Cursor::new(vec![1u8; 4096]), soon);
        let mut chunk = [0u8; CHUNK];
        assert!(reader.read(&mut chunk).is_ok());
        std::thread::sleep(Duration::from_millis(30));
        assert!(reader.read(&mut chunk).is_err());
        assert_eq!(super::super::seconds_text(250), "0.25");
        assert_eq!(super::super::seconds_text(10_000), "10");
        assert_eq!(Stop::never().check(), Ok(()));
    }
}
