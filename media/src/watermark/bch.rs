//! The binary BCH(127, 64) code that protects the watermark's 64-bit ID: 63 parity bits, any 10
//! bit errors corrected (designed distance 21).
//!
//! A word is a `u128` whose bit `i` is the coefficient of `x^i`; a codeword is systematic, the
//! ID in bits 63..127 and the parity (the ID times `x^63` modulo the generator) in bits 0..63.
//! Decoding computes the 20 syndromes, finds the error locator with Berlekamp–Massey and its
//! roots with a Chien search, and refuses a word whose locator does not split into distinct roots
//! inside the code's length (more errors than the code can place).

/// Bits in a codeword.
pub const N: usize = 127;
/// Data bits.
pub const K: usize = 64;
/// Errors the code corrects.
pub const T: usize = 10;
/// Parity bits.
const PARITY: usize = N - K;
/// The primitive polynomial of GF(2^7): x^7 + x^3 + 1.
const PRIMITIVE: u16 = 0x89;

/// GF(2^7) as exponent and logarithm tables.
struct Field {
    exp: [u8; 2 * N],
    log: [u8; N + 1],
}

impl Field {
    const fn new() -> Self {
        let mut exp = [0u8; 2 * N];
        let mut log = [0u8; N + 1];
        let mut x: u16 = 1;
        let mut i = 0;
        while i < N {
            exp[i] = x as u8;
            exp[i + N] = x as u8;
            log[x as usize] = i as u8;
            x <<= 1;
            if x & 0x80 != 0 {
                x ^= PRIMITIVE;
            }
            i += 1;
        }
        Self { exp, log }
    }

    fn mul(&self, a: u8, b: u8) -> u8 {
        if a == 0 || b == 0 {
            return 0;
        }
        self.exp[self.log[a as usize] as usize + self.log[b as usize] as usize]
    }

    fn div(&self, a: u8, b: u8) -> u8 {
        debug_assert!(b != 0);
        if a == 0 {
            return 0;
        }
        self.exp[(self.log[a as usize] as usize + N - self.log[b as usize] as usize) % N]
    }

    /// `alpha^e` for any exponent.
    fn pow(&self, e: usize) -> u8 {
        self.exp[e % N]
    }
}

static FIELD: Field = Field::new();

/// The generator polynomial: the product of the minimal polynomials of alpha^1..alpha^20
/// (nine distinct ones of degree 7), a binary polynomial of degree 63.
fn generator() -> u64 {
    let mut covered = [false; N];
    // g as a polynomial over GF(2^7), lowest degree first; it ends up binary.
    let mut g: Vec<u8> = vec![1];
    for i in 1..=2 * T {
        if covered[i] {
            continue;
        }
        let mut j = i;
        loop {
            covered[j] = true;
            // g *= (x - alpha^j)
            let root = FIELD.pow(j);
            let mut next = vec![0u8; g.len() + 1];
            for (d, &c) in g.iter().enumerate() {
                next[d + 1] ^= c;
                next[d] ^= FIELD.mul(c, root);
            }
            g = next;
            j = (j * 2) % N;
            if j == i {
                break;
            }
        }
    }
    debug_assert_eq!(g.len(), PARITY + 1);
    // The leading coefficient (x^63) is implicit in the u64.
    g.iter().take(PARITY).enumerate().fold(0u64, |acc, (d, &c)| {
        debug_assert!(c <= 1, "the generator is binary");
        acc | (u64::from(c) << d)
    })
}

/// `value * x^63 mod g`, the parity of a data word.
fn parity(value: u64, g: u64) -> u64 {
    let mask = (1u64 << PARITY) - 1;
    let mut rem: u64 = 0;
    for bit in (0..K).rev() {
        let feedback = ((value >> bit) & 1) ^ ((rem >> (PARITY - 1)) & 1);
        rem = (rem << 1) & mask;
        if feedback == 1 {
            rem ^= g;
        }
    }
    rem
}

/// The codeword of `data`.
pub fn encode(data: u64) -> u128 {
    (u128::from(data) << PARITY) | u128::from(parity(data, generator()))
}

/// The data and the number of corrected bits of `word`, or `None` when more bits are wrong than
/// the code can place.
pub fn decode(word: u128) -> Option<(u64, u32)> {
    let word = word & ((1u128 << N) - 1);
    let mut syndromes = [0u8; 2 * T];
    let mut any = false;
    for (j, s) in syndromes.iter_mut().enumerate() {
        let mut acc = 0u8;
        for i in 0..N {
            if (word >> i) & 1 == 1 {
                acc ^= FIELD.pow(i * (j + 1));
            }
        }
        *s = acc;
        any |= acc != 0;
    }
    if !any {
        return Some(((word >> PARITY) as u64, 0));
    }
    let locator = berlekamp_massey(&syndromes)?;
    let degree = locator.len() - 1;
    // Chien search: position i is wrong when locator(alpha^-i) = 0.
    let mut fixed = word;
    let mut roots = 0usize;
    for i in 0..N {
        let inverse = (N - i) % N;
        let mut value = 0u8;
        for (d, &c) in locator.iter().enumerate() {
            value ^= FIELD.mul(c, FIELD.pow(inverse * d));
        }
        if value == 0 {
            fixed ^= 1u128 << i;
            roots += 1;
        }
    }
    if roots != degree {
        return None;
    }
    Some(((fixed >> PARITY) as u64, roots as u32))
}

/// The error locator (lowest degree first) of the syndromes, or `None` when its degree exceeds
/// [`T`].
fn berlekamp_massey(s: &[u8; 2 * T]) -> Option<Vec<u8>> {
    let mut c: Vec<u8> = vec![1];
    let mut b: Vec<u8> = vec![1];
    let mut l = 0usize;
    let mut m = 1usize;
    let mut last = 1u8;
    for n in 0..2 * T {
        let mut d = s[n];
        for i in 1..=l.min(c.len() - 1) {
            d ^= FIELD.mul(c[i], s[n - i]);
        }
        if d == 0 {
            m += 1;
            continue;
        }
        let coef = FIELD.div(d, last);
        let previous = c.clone();
        if c.len() < b.len() + m {
            c.resize(b.len() + m, 0);
        }
        for (i, &bi) in b.iter().enumerate() {
            c[i + m] ^= FIELD.mul(coef, bi);
        }
        if 2 * l <= n {
            l = n + 1 - l;
            b = previous;
            last = d;
            m = 1;
        } else {
            m += 1;
        }
    }
    while c.len() > 1 && c[c.len() - 1] == 0 {
        c.pop();
    }
    (l <= T && c.len() - 1 == l).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::watermark::Stream;

    #[test]
    fn the_generator_divides_x_to_the_127_minus_1() {
        // Every codeword is a multiple of g: its 20 syndromes are zero.
        let word = encode(0x0123_4567_89ab_cdef);
        assert_eq!(decode(word), Some((0x0123_4567_89ab_cdef, 0)));
        // g(1) = 1 (x + 1 does not divide g): with the implicit x^63, an odd number of terms.
        assert_eq!((generator().count_ones() + 1) % 2, 1);
    }

    #[test]
    fn up_to_ten_errors_are_corrected_anywhere() {
        let mut stream = Stream(7);
        for errors in 0..=T {
            for _ in 0..40 {
                let data = stream.next();
                let mut word = encode(data);
                let mut flipped = 0;
                while flipped < errors {
                    let bit = (stream.next() % N as u64) as u32;
                    if (word >> bit) & 1 == (encode(data) >> bit) & 1 {
                        word ^= 1u128 << bit;
                        flipped += 1;
                    }
                }
                assert_eq!(decode(word), Some((data, errors as u32)), "{errors} errors");
            }
        }
    }

    #[test]
    fn random_words_are_mostly_refused() {
        // A random word lies within 10 bits of a codeword with probability 2.5e-5.
        let mut stream = Stream(11);
        let accepted = (0..2000)
            .filter(|_| {
                let word = (u128::from(stream.next()) << 64) | u128::from(stream.next());
                decode(word).is_some()
            })
            .count();
        assert_eq!(accepted, 0);
    }
}
