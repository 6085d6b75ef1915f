//! The deterministic dice everything in the estate is rolled with: hash-derived values per
//! label, and grids of periods where a VM's state may change.

use crate::synth::mix;

/// The independent values rolled for one thing; each label gives its own value, so adding
/// a property never shifts the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Roll {
    Class,
    Period,
    Phase,
    Born,
    Delay,
    Margin,
    Purpose,
    Placeholder,
    Tenant,
    RootFolder,
    Cluster,
    Standalone,
    Tier,
    Role,
    Cpu,
    Ram,
    RamRatio,
    Disk,
    DiskJitter,
    Thin,
    Uncommitted,
    AlwaysOff,
    PowerPeriod,
    PowerPhase,
    PowerOff,
    OffStart,
    OffLength,
    Suspend,
    ResizePeriod,
    ResizePhase,
    CpuStep,
    RamStep,
    MovePeriod,
    MovePhase,
    Move,
    MoveUp,
    DrsPeriod,
    DrsPhase,
    Host,
    HostCount,
    TenantCount,
    TenantOffset,
    VApp,
    Uuid,
    UuidLow,
    InstanceUuid,
    InstanceUuidLow,
    TenantAttribute,
}

/// A hash-derived source of values for one thing (a vCenter, a slot, a VM generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dice(u64);

impl Dice {
    pub(super) fn new(seed: u64) -> Dice {
        Dice(mix(seed))
    }

    /// The dice of a numbered part of this thing (a slot of a vCenter, a period of a VM).
    pub(super) fn sub(self, part: u64) -> Dice {
        Dice(mix(mix(self.0) ^ part))
    }

    pub(super) fn roll(self, label: Roll) -> u64 {
        mix(self.0 ^ mix(label as u64))
    }

    /// A value in `0..n`; `n` must not be zero.
    pub(super) fn below(self, label: Roll, n: usize) -> usize {
        (self.roll(label) % n as u64) as usize
    }

    /// A value in `lo..hi`; `hi` must be above `lo`.
    pub(super) fn between(self, label: Roll, lo: i64, hi: i64) -> i64 {
        lo + (self.roll(label) % (hi - lo) as u64) as i64
    }

    pub(super) fn pick<T: Copy>(self, label: Roll, items: &[T]) -> T {
        items[self.below(label, items.len())]
    }

    /// An index drawn with the given percentage weights (they sum to 100).
    pub(super) fn weighted(self, label: Roll, weights: &[u64]) -> usize {
        let mut r = self.roll(label) % 100;
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }

    /// A per-VM grid of periods of hash-derived length in `lo..hi` seconds.
    pub(super) fn grid(self, period: Roll, phase: Roll, lo: i64, hi: i64) -> Grid {
        let period = self.between(period, lo, hi);
        Grid {
            period,
            phase: self.between(phase, 0, period),
        }
    }
}

/// Time cut into equal periods: a VM's state changes only where its grids' periods turn.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid {
    pub(super) period: i64,
    pub(super) phase: i64,
}

impl Grid {
    pub(super) fn index(self, t: i64) -> i64 {
        (t - self.phase).div_euclid(self.period)
    }

    pub(super) fn start(self, index: i64) -> i64 {
        self.phase + index * self.period
    }
}

/// Maps every integer to a distinct natural number, so generation numbers before the churn
/// epoch still give unique morefs.
pub(super) fn zigzag(k: i64) -> u64 {
    ((k << 1) ^ (k >> 63)) as u64
}
