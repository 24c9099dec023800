//! Random building blocks: seeded streams, weighted choices, and Australian identifiers
//! that pass their real check-digit rules (Medicare card, ABN, provider number).
//!
//! Every random decision comes from a `ChaCha8Rng` seeded with the run's seed and a
//! stream number, so the same seed gives the same choices on every machine, and one
//! patient's history does not depend on how many random numbers another one drew.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Stream numbers: one for the practice setup, one for expenses, one per patient.
pub(crate) const STREAM_SETUP: u64 = 1;
pub(crate) const STREAM_EXPENSES: u64 = 2;
pub(crate) const STREAM_PATIENT_BASE: u64 = 1 << 32;

/// The random stream `stream` of run `seed`.
pub(crate) fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Convenience draws on top of `rand::Rng`.
pub(crate) trait Dice: Rng {
    /// true with probability `p` (clamped to 0..=1).
    fn chance(&mut self, p: f64) -> bool {
        self.gen::<f64>() < p
    }

    /// A uniform integer in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            lo
        } else {
            self.gen_range(lo..=hi)
        }
    }

    /// A uniform element of a non-empty slice.
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.gen_range(0..items.len())]
    }

    /// An index drawn with the given weights (at least one must be positive).
    fn weighted_index(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| w as u64).sum();
        let mut x = self.gen_range(0..total.max(1));
        for (i, &w) in weights.iter().enumerate() {
            if x < w as u64 {
                return i;
            }
            x -= w as u64;
        }
        weights.len() - 1
    }

    /// An element of `(value, weight)` pairs drawn by weight.
    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let weights: Vec<u32> = items.iter().map(|(_, w)| *w).collect();
        &items[self.weighted_index(&weights)].0
    }

    /// `n` decimal digits.
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.gen_range(0..10u8)))
            .collect()
    }

    /// An exponential wait with the given mean, in whole units.
    fn exponential(&mut self, mean: f64) -> i64 {
        let u: f64 = self.gen_range(f64::EPSILON..1.0);
        (-u.ln() * mean).round() as i64
    }
}

impl<R: Rng + ?Sized> Dice for R {}

/// An Australian mobile number, `04xx xxx xxx`.
pub(crate) fn mobile(rng: &mut impl Rng) -> String {
    format!("04{} {} {}", rng.digits(2), rng.digits(3), rng.digits(3))
}

/// A landline with the state's area code, `(02) 9xxx xxxx`.
pub(crate) fn landline(rng: &mut impl Rng, state: &str) -> String {
    let (area, lead) = match state {
        "NSW" | "ACT" => ("02", *rng.pick(&['9', '8', '4'])),
        "VIC" | "TAS" => ("03", *rng.pick(&['9', '8', '5'])),
        "QLD" => ("07", *rng.pick(&['3', '5'])),
        _ => ("08", *rng.pick(&['9', '8'])),
    };
    format!("({area}) {lead}{} {}", rng.digits(3), rng.digits(4))
}

/// A Medicare card number: 10 digits, the ninth a check digit over the first eight.
pub(crate) fn medicare_number(rng: &mut impl Rng) -> String {
    const WEIGHTS: [u32; 8] = [1, 3, 7, 9, 1, 3, 7, 9];
    let mut digits = [0u32; 8];
    digits[0] = rng.gen_range(2..=6);
    for d in digits.iter_mut().skip(1) {
        *d = rng.gen_range(0..10);
    }
    let check = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum::<u32>() % 10;
    let issue = rng.gen_range(1..=5u32);
    let mut s: String = digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect();
    s.push(char::from_digit(check, 10).unwrap_or('0'));
    s.push(char::from_digit(issue, 10).unwrap_or('1'));
    s
}

/// Whether an 11-digit ABN passes the ATO checksum (weights after subtracting 1 from
/// the first digit; the weighted sum is divisible by 89).
pub(crate) fn abn_is_valid(abn: &str) -> bool {
    const WEIGHTS: [u32; 11] = [10, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19];
    let digits: Vec<u32> = abn.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 11 || digits[0] == 0 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| if i == 0 { d - 1 } else { *d } * WEIGHTS[i])
        .sum();
    sum.is_multiple_of(89)
}

/// A valid ABN formatted `12 345 678 901`.
pub(crate) fn abn(rng: &mut impl Rng) -> String {
    loop {
        let raw = format!("{}{}", rng.gen_range(1..10u8), rng.digits(10));
        if abn_is_valid(&raw) {
            return format!(
                "{} {} {} {}",
                &raw[0..2],
                &raw[2..5],
                &raw[5..8],
                &raw[8..11]
            );
        }
    }
}

/// A Medicare provider number: six-digit stem, practice location character, check
/// character (`2345671A` style).
pub(crate) fn provider_number(rng: &mut impl Rng, location_char: usize) -> String {
    const PLV: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUVWXY";
    const CHECK: &[u8] = b"YXWTLKJHFBA";
    const WEIGHTS: [u32; 6] = [3, 5, 8, 4, 2, 1];
    let stem: Vec<u32> = (0..6)
        .map(|i| {
            if i == 0 {
                rng.gen_range(2..6)
            } else {
                rng.gen_range(0..10)
            }
        })
        .collect();
    let plv = location_char % PLV.len();
    let sum: u32 = stem.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum::<u32>() + plv as u32 * 6;
    let mut s: String = stem
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect();
    s.push(PLV[plv] as char);
    s.push(CHECK[(sum % 11) as usize] as char);
    s
}

/// An e-mail local part from a person's names: `first.last`, `firstlast83`, `flast`.
pub(crate) fn email_local(rng: &mut impl Rng, first: &str, last: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_lowercase()
    };
    let (f, l) = (clean(first), clean(last));
    match rng.gen_range(0..4) {
        0 => format!("{f}.{l}"),
        1 => format!("{f}{l}{}", rng.gen_range(1..100)),
        2 => format!("{}{l}", &f[..1.min(f.len())]),
        _ => format!("{f}.{l}{}", rng.gen_range(60..=99)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_pass_their_checks() {
        let mut r = rng(7, 0);
        assert!(abn_is_valid("51824753556")); // the ATO's worked example
        for _ in 0..50 {
            let a = abn(&mut r);
            assert!(abn_is_valid(&a.replace(' ', "")), "{a}");
            let m = medicare_number(&mut r);
            assert_eq!(m.len(), 10);
            let d: Vec<u32> = m.chars().map(|c| c.to_digit(10).unwrap()).collect();
            let w = [1, 3, 7, 9, 1, 3, 7, 9];
            assert_eq!((0..8).map(|i| d[i] * w[i]).sum::<u32>() % 10, d[8]);
            let p = provider_number(&mut r, 1);
            assert_eq!(p.len(), 8);
            let mob = mobile(&mut r);
            assert!(mob.starts_with("04") && mob.len() == 12, "{mob}");
        }
    }

    #[test]
    fn streams_are_independent_and_repeatable() {
        let (mut r1, mut r2) = (rng(1, 5), rng(1, 5));
        let a: Vec<u32> = (0..4).map(|_| r1.gen()).collect();
        let b: Vec<u32> = (0..4).map(|_| r2.gen()).collect();
        assert_eq!(a, b);
        let mut x = rng(1, 5);
        let mut y = rng(1, 6);
        assert_ne!(x.gen::<u64>(), y.gen::<u64>());
    }
}
