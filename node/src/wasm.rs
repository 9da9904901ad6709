//! The native [`ContractHost`]: wasm modules run by wasmtime with fuel metering.
//!
//! Fuel is the fee unit: every wasm instruction costs fuel, host calls cost fuel by the bytes they
//! move, and a call that runs out stops there. The engine is configured for determinism — NaNs
//! canonicalized, no threads, no relaxed SIMD, bounded memory (16 MiB, growth past it traps) and
//! stack — and links only the `kinema` imports listed in `kinema_contracts`'s docs, so a module
//! that imports anything else is refused when it is loaded. Modules are compiled once and
//! pre-linked ([`wasmtime::InstancePre`]), their methods and memory looked up once; each call
//! gets a fresh instance from a pool of pre-reserved slots.
//!
//! Each memory sits in a 4 GiB reservation followed by a 2 GiB guard, so compiled code needs no
//! bounds checks (an access past the end faults and traps). Changing a slot's accessible size
//! costs an `mprotect` and a TLB shootdown, so the system contracts are built to stay in their
//! initial memory (one 64 KiB page: a 32 KiB stack and a bump allocator, see `contracts-wasm`):
//! each call's instance then reuses its slot as the last one left it, reset with `memset` (only
//! the pages the last call touched, where Linux has `PAGEMAP_SCAN`). A call that grows its
//! memory pays for the growth, and the next call in its slot for the shrink.
//!
//! A call never changes state directly: it returns its writes, which the caller applies only when
//! the call succeeded. A refusal, a trap (`unreachable`, a panic, an out-of-bounds access, the
//! memory limit) or running out of fuel all end the call the same way: no writes, the fuel spent
//! so far charged.

use std::collections::{BTreeMap, HashMap};

use wasmtime::{
    Caller, Config, Engine, Extern, ExternType, InstanceAllocationStrategy, InstancePre, Linker,
    Memory, Module, ModuleExport, PoolingAllocationConfig, Store, StoreLimits, StoreLimitsBuilder,
    Trap, ValType,
};

use kinema_chain::contract::{Call, ContractHost, Failure, Outcome, StateView};
use kinema_chain::{Address, Error};

/// The system contracts, built from `contracts-wasm/` with this crate.
pub const SYSTEM_CONTRACTS: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kinema_contracts.wasm"));

/// Memory a contract instance may have.
pub const MAX_MEMORY: usize = 16 << 20;

/// Instances that can be alive at once (one per call in flight).
const POOL: u32 = 64;
/// Bytes of each pooled linear memory reset with `memset` rather than handed back to the
/// kernel, so the next call in that slot takes no page faults for them (a system contract
/// touches well under this).
const KEEP_RESIDENT: usize = 1 << 20;

/// Fuel charged per byte a host call moves, on top of [`HOST_CALL_FUEL`].
const BYTE_FUEL: u64 = 2;
/// Fuel charged per host call.
const HOST_CALL_FUEL: u64 = 100;

/// Per-call data the host functions see.
struct Context<V> {
    view: V,
    /// The instance's exported memory, once it exists.
    memory: Option<Memory>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    events: Vec<Vec<u8>>,
    input: Vec<u8>,
    output: Vec<u8>,
    caller: Address,
    height: u64,
    limits: StoreLimits,
    /// A state read that failed below the contract (a store error, not the contract's fault).
    fault: Option<Error>,
}

/// A compiled, pre-linked contract with its exports looked up.
struct Contract<V> {
    pre: InstancePre<Context<V>>,
    /// `memory`, when exported.
    memory: Option<ModuleExport>,
    /// Every exported function of type `() -> i32`: the callable methods.
    methods: HashMap<String, ModuleExport>,
}

/// Compiled contracts, ready to call.
pub struct Host<V: StateView> {
    engine: Engine,
    linker: Linker<Context<V>>,
    contracts: HashMap<String, Contract<V>>,
}

impl<V: StateView> std::fmt::Debug for Host<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.contracts.keys().collect();
        names.sort();
        f.debug_struct("Host").field("contracts", &names).finish()
    }
}

impl<V: StateView> ContractHost<V> for Host<V> {
    fn call(&self, view: V, call: &Call<'_>) -> Result<(Outcome, V), Error> {
        Host::call(self, view, call)
    }
}

fn host_error(what: &'static str) -> impl Fn(wasmtime::Error) -> Error {
    move |e| Error::Contract { what, detail: format!("{e:#}") }
}

impl<V: StateView> Host<V> {
    /// A host with the system contracts loaded (`accounts`, `jobs`: every
    /// `contract.method` the module exports).
    pub fn new() -> Result<Self, Error> {
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .cranelift_nan_canonicalization(true)
            .wasm_relaxed_simd(false)
            .max_wasm_stack(512 << 10)
            .signals_based_traps(true)
            .memory_guard_size(2 << 30)
            .guard_before_linear_memory(false)
            .memory_reservation(4 << 30)
            .memory_reservation_for_growth(0);
        // Threads need wasmtime's `threads` feature, which Kinema does not build.
        // Instances come from a pool of pre-reserved slots: a call then costs no mmap.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(POOL)
            .total_memories(POOL)
            .total_tables(POOL)
            .max_memory_size(MAX_MEMORY)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto)
            .table_keep_resident(64 << 10);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(host_error("configuring wasmtime"))?;
        let mut linker = Linker::new(&engine);
        define_imports(&mut linker).map_err(host_error("defining the host functions"))?;
        let mut host = Self { engine, linker, contracts: HashMap::new() };
        host.load("system", SYSTEM_CONTRACTS)?;
        Ok(host)
    }

    /// Compiles `wasm` (binary, or text when it starts with `(`) and makes its methods
    /// callable: an export `contract.method` as `method` of `contract`, any other as a method
    /// of `name`. A module that imports anything the host does not offer is refused here.
    pub fn load(&mut self, name: &str, wasm: &[u8]) -> Result<(), Error> {
        let module = Module::new(&self.engine, wasm).map_err(host_error("compiling a contract"))?;
        let pre = self.linker.instantiate_pre(&module).map_err(host_error("linking a contract"))?;
        let memory = module
            .exports()
            .find(|e| e.name() == "memory" && matches!(e.ty(), ExternType::Memory(_)))
            .and_then(|e| module.get_export_index(e.name()));
        for export in module.exports() {
            let ExternType::Func(f) = export.ty() else { continue };
            let callable =
                f.params().len() == 0 && f.results().map(|r| matches!(r, ValType::I32)).eq([true]);
            let Some(index) = module.get_export_index(export.name()).filter(|_| callable) else {
                continue;
            };
            let (contract, method) = export.name().split_once('.').unwrap_or((name, export.name()));
            let entry = self.contracts.entry(contract.to_owned()).or_insert_with(|| Contract {
                pre: pre.clone(),
                memory,
                methods: HashMap::new(),
            });
            entry.methods.insert(method.to_owned(), index);
        }
        Ok(())
    }

    /// Runs `call` against `view`, which is handed back with the outcome.
    pub fn call(&self, view: V, call: &Call<'_>) -> Result<(Outcome, V), Error> {
        self.call_in_one_instance(view, call, 1)
    }

    /// Runs `call` `times` times in one instance against the same `view` and returns the last
    /// outcome: what the contract's code costs without a fresh instance, for the benchmark that
    /// compares it with the same code compiled natively. The chain never calls this: each of
    /// its calls gets a fresh instance, so no call sees what another left in memory.
    #[doc(hidden)]
    pub fn call_in_one_instance(
        &self,
        view: V,
        call: &Call<'_>,
        times: usize,
    ) -> Result<(Outcome, V), Error> {
        let context = Context {
            view,
            memory: None,
            writes: BTreeMap::new(),
            events: Vec::new(),
            input: call.args.to_vec(),
            output: Vec::new(),
            caller: call.caller,
            height: call.height,
            limits: StoreLimitsBuilder::new()
                .memory_size(MAX_MEMORY)
                .instances(1)
                .tables(4)
                .memories(1)
                .trap_on_grow_failure(true)
                .build(),
            fault: None,
        };
        let mut store = Store::new(&self.engine, context);
        store.limiter(|c| &mut c.limits);
        let result = self.run(&mut store, call, times)?;
        let fuel_used = call.fuel - store.get_fuel().unwrap_or(0);
        let mut context = store.into_data();
        if let Some(fault) = context.fault.take() {
            return Err(fault);
        }
        let (writes, events) = if result.is_ok() {
            (std::mem::take(&mut context.writes), std::mem::take(&mut context.events))
        } else {
            (BTreeMap::new(), Vec::new())
        };
        Ok((Outcome { result, fuel_used, writes, events }, context.view))
    }

    /// Instantiates `call`'s contract in `store` and calls its method `times` times (each with
    /// the call's fuel, none seeing the writes of the one before); the result of the last.
    fn run(
        &self,
        store: &mut Store<Context<V>>,
        call: &Call<'_>,
        times: usize,
    ) -> Result<Result<(), Failure>, Error> {
        store.set_fuel(call.fuel).map_err(host_error("setting fuel"))?;
        let missing = || Failure::NoSuchMethod(format!("{}.{}", call.contract, call.method));
        let Some(contract) = self.contracts.get(call.contract) else { return Ok(Err(missing())) };
        let Some(method) = contract.methods.get(call.method) else { return Ok(Err(missing())) };
        let instance = match contract.pre.instantiate(&mut *store) {
            Ok(instance) => instance,
            Err(e) => return Ok(Err(classify(e))),
        };
        if let Some(export) = &contract.memory {
            store.data_mut().memory =
                instance.get_module_export(&mut *store, export).and_then(Extern::into_memory);
        }
        let method = instance
            .get_module_export(&mut *store, method)
            .and_then(Extern::into_func)
            .and_then(|f| f.typed::<(), i32>(&*store).ok());
        let Some(method) = method else { return Ok(Err(missing())) };
        let mut result = Ok(());
        for i in 0..times {
            if i > 0 {
                let context = store.data_mut();
                context.writes.clear();
                context.events.clear();
                context.output.clear();
                store.set_fuel(call.fuel).map_err(host_error("setting fuel"))?;
            }
            result = match method.call(&mut *store, ()) {
                Ok(0) => Ok(()),
                Ok(_) => Err(Failure::Refused(
                    String::from_utf8_lossy(&store.data().output).into_owned(),
                )),
                Err(e) => Err(classify(e)),
            };
            if result.is_err() {
                break;
            }
        }
        Ok(result)
    }
}

fn classify(e: wasmtime::Error) -> Failure {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::OutOfFuel,
        Some(trap) => Failure::Trap(trap.to_string()),
        None => Failure::Trap(format!("{e:#}")),
    }
}

/// Charges a host call's fuel: [`HOST_CALL_FUEL`] plus [`BYTE_FUEL`] per byte moved.
fn charge<V>(caller: &mut Caller<'_, Context<V>>, bytes: usize) -> wasmtime::Result<()> {
    let cost = HOST_CALL_FUEL + BYTE_FUEL * bytes as u64;
    let left = caller.get_fuel()?;
    if left < cost {
        caller.set_fuel(0)?;
        return Err(Trap::OutOfFuel.into());
    }
    caller.set_fuel(left - cost)
}

/// The calling instance's memory and the call's context, borrowed together.
fn memory<'a, V: 'static>(
    caller: &'a mut Caller<'_, Context<V>>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut Context<V>)> {
    let memory = caller
        .data()
        .memory
        .ok_or_else(|| wasmtime::Error::msg("the contract exports no memory"))?;
    Ok(memory.data_and_store_mut(caller))
}

/// `len` bytes of `memory` at `ptr`, or a trap naming the access.
fn range(memory: &[u8], ptr: i32, len: i32) -> wasmtime::Result<std::ops::Range<usize>> {
    let start = ptr as u32 as usize;
    let end = usize::try_from(len).ok().and_then(|len| start.checked_add(len));
    match end {
        Some(end) if end <= memory.len() => Ok(start..end),
        _ => Err(wasmtime::Error::msg(format!(
            "out of bounds memory access: {len} bytes at {start} in {} bytes of memory",
            memory.len()
        ))),
    }
}

/// A copy of `len` bytes of the caller's memory at `ptr`.
fn read_bytes<V: 'static>(
    caller: &mut Caller<'_, Context<V>>,
    ptr: i32,
    len: i32,
) -> wasmtime::Result<Vec<u8>> {
    let (memory, _) = memory(caller)?;
    Ok(memory[range(memory, ptr, len)?].to_vec())
}

/// Writes `bytes` into the caller's memory at `ptr`.
fn write_bytes<V: 'static>(
    caller: &mut Caller<'_, Context<V>>,
    ptr: i32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    let (memory, _) = memory(caller)?;
    put(memory, ptr, bytes)
}

/// Copies `bytes` into `memory` at `ptr`, or traps naming the access.
fn put(memory: &mut [u8], ptr: i32, bytes: &[u8]) -> wasmtime::Result<()> {
    let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    let at = range(memory, ptr, len)?;
    memory[at].copy_from_slice(bytes);
    Ok(())
}

fn define_imports<V: StateView>(linker: &mut Linker<Context<V>>) -> wasmtime::Result<()> {
    const M: &str = "kinema";
    linker.func_wrap(M, "input_len", |c: Caller<'_, Context<V>>| c.data().input.len() as i32)?;
    linker.func_wrap(M, "input_read", |mut c: Caller<'_, Context<V>>, ptr: i32| {
        let len = c.data().input.len();
        charge(&mut c, len)?;
        let (memory, context) = memory(&mut c)?;
        put(memory, ptr, &context.input)
    })?;
    linker.func_wrap(M, "caller", |mut c: Caller<'_, Context<V>>, ptr: i32| {
        let who = c.data().caller;
        write_bytes(&mut c, ptr, &who.0)
    })?;
    linker.func_wrap(M, "height", |c: Caller<'_, Context<V>>| c.data().height as i64)?;
    linker.func_wrap(
        M,
        "storage_read",
        |mut c: Caller<'_, Context<V>>, key: i32, key_len: i32, out: i32, cap: i32| {
            let (memory, context) = memory(&mut c)?;
            let key = &memory[range(memory, key, key_len)?];
            let value = match context.writes.get(key) {
                Some(written) => written.clone(),
                None => match context.view.get(key) {
                    Ok(v) => v,
                    Err(e) => {
                        context.fault = Some(e);
                        return Err(wasmtime::Error::msg("the state could not be read"));
                    }
                },
            };
            let key_len = key.len();
            let Some(value) = value else {
                charge(&mut c, key_len)?;
                return Ok(-1);
            };
            charge(&mut c, key_len + value.len())?;
            let cap = usize::try_from(cap).unwrap_or(0);
            write_bytes(&mut c, out, &value[..value.len().min(cap)])?;
            Ok(value.len() as i32)
        },
    )?;
    linker.func_wrap(
        M,
        "storage_write",
        |mut c: Caller<'_, Context<V>>, key: i32, key_len: i32, value: i32, value_len: i32| {
            let key = read_bytes(&mut c, key, key_len)?;
            let value = read_bytes(&mut c, value, value_len)?;
            charge(&mut c, 4 * (key.len() + value.len()))?;
            c.data_mut().writes.insert(key, Some(value));
            Ok(())
        },
    )?;
    linker.func_wrap(
        M,
        "storage_remove",
        |mut c: Caller<'_, Context<V>>, key: i32, key_len: i32| {
            let key = read_bytes(&mut c, key, key_len)?;
            charge(&mut c, 4 * key.len())?;
            c.data_mut().writes.insert(key, None);
            Ok(())
        },
    )?;
    linker.func_wrap(M, "emit", |mut c: Caller<'_, Context<V>>, ptr: i32, len: i32| {
        let event = read_bytes(&mut c, ptr, len)?;
        charge(&mut c, event.len())?;
        c.data_mut().events.push(event);
        Ok(())
    })?;
    linker.func_wrap(M, "output", |mut c: Caller<'_, Context<V>>, ptr: i32, len: i32| {
        let text = read_bytes(&mut c, ptr, len)?;
        charge(&mut c, text.len())?;
        c.data_mut().output = text;
        Ok(())
    })?;
    linker.func_wrap(
        M,
        "blake3",
        |mut c: Caller<'_, Context<V>>, ptr: i32, len: i32, out: i32| {
            let bytes = read_bytes(&mut c, ptr, len)?;
            charge(&mut c, bytes.len())?;
            write_bytes(&mut c, out, blake3::hash(&bytes).as_bytes())
        },
    )?;
    linker.func_wrap(
        M,
        "ed25519_verify",
        |mut c: Caller<'_, Context<V>>, key: i32, msg: i32, msg_len: i32, sig: i32| {
            let key = read_bytes(&mut c, key, 32)?;
            let msg = read_bytes(&mut c, msg, msg_len)?;
            let sig = read_bytes(&mut c, sig, 64)?;
            // A signature check costs about as much as hashing 25 KB.
            charge(&mut c, 25_000 + msg.len())?;
            let (Ok(key), Ok(sig)) = (<[u8; 32]>::try_from(key), <[u8; 64]>::try_from(sig)) else {
                return Ok(0);
            };
            let ok = ed25519_dalek::VerifyingKey::from_bytes(&key)
                .map(|k| k.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig)).is_ok())
                .unwrap_or(false);
            Ok(i32::from(ok))
        },
    )?;
    Ok(())
}
