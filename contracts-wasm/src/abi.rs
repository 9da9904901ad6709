//! The wasm32 boundary: the host's imports and one export per contract method.
//!
//! With `heap`, the only unsafe code of the contracts: calling imported functions and
//! exporting unmangled symbols. Every pointer handed to the host points into a live Rust buffer
//! of the stated length.

#![allow(unsafe_code)]

use crate::accounts::{self, SlashArgs, TransferArgs};
use crate::jobs::{self, BondArgs, ChallengeArgs, PostArgs, PublishArgs, ResultArgs, VerdictArgs};
use crate::tickets::{self, FundArgs, RedeemArgs};
use crate::{Address, Host, Refusal};

#[link(wasm_import_module = "kinema")]
unsafe extern "C" {
    fn input_len() -> i32;
    fn input_read(ptr: *mut u8);
    fn caller(ptr: *mut u8);
    fn height() -> i64;
    fn storage_read(key: *const u8, key_len: i32, out: *mut u8, cap: i32) -> i32;
    fn storage_write(key: *const u8, key_len: i32, value: *const u8, value_len: i32);
    fn storage_remove(key: *const u8, key_len: i32);
    fn emit(ptr: *const u8, len: i32);
    fn output(ptr: *const u8, len: i32);
    fn blake3(ptr: *const u8, len: i32, out: *mut u8);
    fn ed25519_verify(key: *const u8, msg: *const u8, msg_len: i32, sig: *const u8) -> i32;
}

/// Bytes a state read offers the host at first; a longer value is read again.
const READ_FIRST: usize = 256;

/// The host, seen through its imports.
#[derive(Default)]
struct Imports {
    /// The block height, asked once.
    height: core::cell::OnceCell<u64>,
}

impl Host for Imports {
    fn read(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut buf = Vec::with_capacity(READ_FIRST);
        // SAFETY: key is a live buffer of the length passed; buf has room for `cap` bytes.
        let len = unsafe {
            storage_read(key.as_ptr(), key.len() as i32, buf.as_mut_ptr(), READ_FIRST as i32)
        };
        let len = usize::try_from(len).ok()?;
        if len > READ_FIRST {
            buf.reserve_exact(len);
            // SAFETY: as above, with room for the whole value.
            unsafe { storage_read(key.as_ptr(), key.len() as i32, buf.as_mut_ptr(), len as i32) };
        }
        // SAFETY: the host wrote the value's first min(len, cap) bytes, and cap ≥ len now.
        unsafe { buf.set_len(len) };
        Some(buf)
    }

    fn write(&mut self, key: &[u8], value: &[u8]) {
        // SAFETY: key and value are live buffers of the lengths passed.
        unsafe { storage_write(key.as_ptr(), key.len() as i32, value.as_ptr(), value.len() as i32) }
    }

    fn remove(&mut self, key: &[u8]) {
        // SAFETY: key is a live buffer of the length passed.
        unsafe { storage_remove(key.as_ptr(), key.len() as i32) }
    }

    fn caller(&self) -> Address {
        let mut out = [0u8; 20];
        // SAFETY: out has the 20 bytes the host writes.
        unsafe { caller(out.as_mut_ptr()) };
        out
    }

    fn height(&self) -> u64 {
        // SAFETY: no arguments.
        *self.height.get_or_init(|| unsafe { height() as u64 })
    }

    fn emit(&mut self, event: &[u8]) {
        // SAFETY: event is a live buffer of the length passed.
        unsafe { emit(event.as_ptr(), event.len() as i32) }
    }

    fn hash(&self, bytes: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: bytes is a live buffer of the length passed; out has the 32 bytes written.
        unsafe { blake3(bytes.as_ptr(), bytes.len() as i32, out.as_mut_ptr()) };
        out
    }

    fn verify(&self, key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        // SAFETY: key (32 bytes), message (of the length passed) and signature (64 bytes)
        // are live buffers.
        unsafe {
            ed25519_verify(key.as_ptr(), message.as_ptr(), message.len() as i32, signature.as_ptr())
                == 1
        }
    }
}

fn input() -> Vec<u8> {
    // SAFETY: no arguments; then a buffer of exactly the announced length.
    let len = unsafe { input_len() }.max(0) as usize;
    let mut buf = Vec::with_capacity(len);
    unsafe {
        input_read(buf.as_mut_ptr());
        // The host wrote all `len` bytes.
        buf.set_len(len);
    }
    buf
}

fn finish(result: Result<(), Refusal>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(Refusal(reason)) => {
            // SAFETY: reason is a live buffer of the length passed.
            unsafe { output(reason.as_ptr(), reason.len() as i32) };
            1
        }
    }
}

fn args<T: borsh::BorshDeserialize>() -> Result<T, Refusal> {
    borsh::from_slice(&input()).map_err(|e| Refusal(format!("bad arguments: {e}")))
}

/// Exports `$name` (`contract.method`) as a method that decodes its arguments as `$args` and
/// runs `$run` on the host.
macro_rules! method {
    ($fn:ident, $name:literal, |$host:ident, $a:ident: $args:ty| $run:expr) => {
        #[doc = concat!("`", $name, "(", stringify!($args), ")`.")]
        #[unsafe(export_name = $name)]
        pub(crate) extern "C" fn $fn() -> i32 {
            finish(args::<$args>().and_then(|$a| {
                let $host = &mut Imports::default();
                $run
            }))
        }
    };
}

method!(accounts_transfer, "accounts.transfer", |h, a: TransferArgs| accounts::transfer(h, &a));
method!(accounts_stake, "accounts.stake", |h, a: u64| accounts::stake(h, a));
method!(accounts_unstake, "accounts.unstake", |h, a: u64| accounts::unstake(h, a));
method!(accounts_slash, "accounts.slash", |h, a: SlashArgs| accounts::slash(h, &a));
method!(jobs_bond, "jobs.bond", |h, a: BondArgs| jobs::bond(h, &a));
method!(jobs_unbond, "jobs.unbond", |h, a: u64| jobs::unbond(h, a));
method!(jobs_withdraw, "jobs.withdraw", |h, _a: ()| jobs::withdraw(h));
method!(jobs_post, "jobs.post", |h, a: PostArgs| jobs::post(h, &a));
method!(jobs_cancel, "jobs.cancel", |h, a: u64| jobs::cancel(h, a));
method!(jobs_result, "jobs.result", |h, a: ResultArgs| jobs::result(h, &a));
method!(jobs_verdict, "jobs.verdict", |h, a: VerdictArgs| jobs::verdict(h, &a));
method!(jobs_challenge, "jobs.challenge", |h, a: ChallengeArgs| jobs::challenge(h, &a));
method!(jobs_publish, "jobs.publish", |h, a: PublishArgs| jobs::publish(h, &a));
method!(jobs_tick, "jobs.tick", |h, _a: ()| jobs::tick(h));
method!(tickets_fund, "tickets.fund", |h, a: FundArgs| tickets::fund(h, &a));
method!(tickets_unlock, "tickets.unlock", |h, _a: ()| tickets::unlock(h));
method!(tickets_withdraw, "tickets.withdraw", |h, _a: ()| tickets::withdraw(h));
method!(tickets_redeem, "tickets.redeem", |h, a: RedeemArgs| tickets::redeem(h, &a));
