#!/usr/bin/env node
// Kinema <-> js-libp2p interoperability harness.
//
//   node interop.mjs dial <multiaddr-with-/p2p/peerid>
//   node interop.mjs listen [listen-multiaddr]   (default /ip4/127.0.0.1/tcp/0/ws)
//
// Exactly one JSON line is printed on stdout as the final result (listen mode
// additionally prints a {"listening": ...} line first). Everything else goes to
// stderr. Exit code 0 on success, 1 on failure, 2 on usage error.
//
// Environment:
//   INTEROP_TIMEOUT_MS  overall wait (dial: identify wait, default 15000;
//                       listen: wait for identify + inbound ping, default 30000)
//   INTEROP_PROTOCOL_VERSION  identify protocolVersion this node advertises
//                       (default js-libp2p's "ipfs/0.1.0"); for self-tests
//   DEBUG=libp2p:*      js-libp2p debug logging (goes to stderr)

// ---------------------------------------------------------------------------
// Node 20 shims. The current js-libp2p line (libp2p 3.x) targets Node >= 22:
//  * it calls Promise.withResolvers() (V8 12.2+, Node >= 22),
//  * @libp2p/websockets dials with the global WebSocket, which Node 20 only
//    exposes behind --experimental-websocket.
// Both are installed before libp2p is loaded (hence the dynamic imports below).
// ---------------------------------------------------------------------------
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve
      let reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}
if (typeof globalThis.WebSocket !== 'function') {
  // Same `ws` implementation @libp2p/websockets itself uses for its listener.
  const { WebSocket } = await import('ws')
  globalThis.WebSocket = WebSocket
}

const { createLibp2p } = await import('libp2p')
const { webSockets } = await import('@libp2p/websockets')
const { tcp } = await import('@libp2p/tcp')
const { noise } = await import('@chainsafe/libp2p-noise')
const { yamux } = await import('@chainsafe/libp2p-yamux')
const { identify } = await import('@libp2p/identify')
const { ping } = await import('@libp2p/ping')
const { multiaddr } = await import('@multiformats/multiaddr')

const PING_PROTOCOL = '/ipfs/ping/1.0.0'
const PING_LENGTH = 32

const log = (...args) => console.error('[interop]', ...args)

let node = null
let finished = false

function errMsg (err) {
  if (err == null) return 'unknown error'
  if (err instanceof AggregateError && Array.isArray(err.errors) && err.errors.length > 0) {
    return `${err.name}: ${err.message} [${err.errors.map(e => errMsg(e)).join('; ')}]`
  }
  if (err.name != null && err.message != null) return `${err.name}: ${err.message}`
  // DOM-style ErrorEvent (e.g. a failed WebSocket connect) rejected as-is
  if (err.type != null && (err.error != null || err.message != null)) {
    return `${err.type} event: ${err.error != null ? errMsg(err.error) : err.message}`
  }
  return String(err)
}

async function finish (result, code, lingerMs = 0) {
  if (finished) return
  finished = true
  await new Promise(resolve => process.stdout.write(JSON.stringify(result) + '\n', resolve))
  // Give in-flight replies (e.g. our pong to the remote's ping) time to leave
  // before the connection is torn down.
  if (lingerMs > 0) await new Promise(resolve => setTimeout(resolve, lingerMs))
  if (node != null) {
    // Don't let a hung shutdown keep us alive. (The timer is deliberately not
    // unref'd: if the event loop drained while node.stop() is pending, Node
    // would exit with code 13, "unsettled top-level await".)
    await Promise.race([
      node.stop().catch(err => log('stop error:', errMsg(err))),
      new Promise(resolve => setTimeout(resolve, 2000))
    ])
  }
  process.exit(code)
}

function fail (err) {
  return finish({ ok: false, error: typeof err === 'string' ? err : errMsg(err) }, 1)
}

// Keep stray async errors from crashing the process without a JSON line; the
// mode-level timeouts turn real problems into {"ok":false}.
process.on('unhandledRejection', err => log('unhandled rejection:', errMsg(err)))
process.on('uncaughtException', err => log('uncaught exception:', errMsg(err)))

// Hard watchdog. libp2p's own timeouts (AbortSignal.timeout) use unref'd
// timers; if a promise hangs after the peer hung up, nothing else may keep the
// event loop alive and Node would exit with code 13 and no JSON line.
function startWatchdog (ms) {
  setTimeout(() => fail(`watchdog: no result after ${ms} ms`), ms)
}

async function makeNode (listen) {
  const n = await createLibp2p({
    start: false,
    addresses: { listen },
    // webSockets() in @libp2p/websockets >= 10 has no `filter` option any more:
    // dialFilter/listenFilter accept every /ws and /wss address (loopback
    // included), and the Node.js default connection gater allows private
    // addresses. tcp() is included so plain /tcp addresses work too.
    transports: [webSockets(), tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // The connection monitor would ping peers on its own every 10 s; disable it
    // so every ping on the wire is an explicit one from this harness/the peer.
    connectionMonitor: { enabled: false },
    services: {
      // js identify does not validate the remote protocolVersion, so
      // "/kinema/1.0.0" (or anything else) is accepted.
      identify: identify(),
      ping: ping()
    }
  })
  // Test hook: advertise a non-default identify protocolVersion (e.g. the
  // "/kinema/1.0.0" that Kinema's rust nodes send) to check the other side
  // accepts it. Pokes an internal field of @libp2p/identify (read at start()).
  const pv = process.env.INTEROP_PROTOCOL_VERSION
  if (pv != null && pv !== '') {
    if (n.services.identify?.host == null) throw new Error('cannot override identify protocolVersion (API changed?)')
    n.services.identify.host.protocolVersion = pv
  }
  return n
}

function identifyFields (detail) {
  return {
    peer: detail.peerId.toString(),
    protocolVersion: detail.protocolVersion ?? null,
    agentVersion: detail.agentVersion ?? null,
    protocols: detail.protocols ?? []
  }
}

async function dialMode (target) {
  const timeoutMs = Number(process.env.INTEROP_TIMEOUT_MS ?? 15000)
  let ma
  try {
    ma = multiaddr(target)
  } catch (err) {
    return fail(`invalid multiaddr ${target}: ${errMsg(err)}`)
  }
  const expectedPeer = ma.getComponents().findLast(c => c.name === 'p2p')?.value
  if (expectedPeer == null) return fail('multiaddr must end with /p2p/<peer id>')
  startWatchdog(timeoutMs + 15000)

  node = await makeNode([])
  // Register before dialing: identify runs as soon as the connection opens.
  const identified = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for identify with ${expectedPeer}`)), timeoutMs)
    node.addEventListener('peer:identify', evt => {
      const peer = evt.detail.peerId.toString()
      log('identify completed with', peer)
      if (peer === expectedPeer) {
        clearTimeout(timer)
        resolve(evt.detail)
      }
    })
  })
  identified.catch(() => {})
  await node.start()
  log('local peer', node.peerId.toString(), 'dialing', ma.toString())

  const conn = await node.dial(ma, { signal: AbortSignal.timeout(timeoutMs) })
  log('connected to', conn.remotePeer.toString(), 'via', conn.remoteAddr.toString(), `(${conn.encryption ?? '?'} / ${conn.multiplexer ?? '?'})`)
  const detail = await identified
  const rtt = await node.services.ping.ping(ma, { signal: AbortSignal.timeout(10000) })
  log('ping rtt', rtt, 'ms')
  // Linger briefly so a peer that pings us back (listen mode) can finish.
  return finish({ ok: true, ...identifyFields(detail), rtt_ms: rtt }, 0, 1000)
}

async function listenMode (listenAddr) {
  const timeoutMs = Number(process.env.INTEROP_TIMEOUT_MS ?? 30000)
  startWatchdog(timeoutMs + 15000)
  node = await makeNode([listenAddr ?? '/ip4/127.0.0.1/tcp/0/ws'])

  const peers = new Map() // peer id -> { identify, inboundPing, pingBack }
  const entry = peer => {
    if (!peers.has(peer)) peers.set(peer, { identify: null, inboundPing: false, pingBack: null })
    return peers.get(peer)
  }
  let done
  const completed = new Promise(resolve => { done = resolve })
  const check = peer => {
    const e = entry(peer)
    if (e.identify != null && e.inboundPing && e.pingBack != null) done(peer)
  }

  node.addEventListener('peer:identify', evt => {
    const peer = evt.detail.peerId.toString()
    log('identify completed with', peer, 'agent', JSON.stringify(evt.detail.agentVersion))
    const e = entry(peer)
    e.identify = evt.detail
    // Ping back straight away (the remote may hang up soon after its own ping)
    // to report an RTT and to check the outbound direction too.
    // (by peer id: reuses the existing connection). js ping does not notice a
    // closed connection by itself, so abort it on disconnect.
    const gone = new AbortController()
    const onDisconnect = ev => {
      if (ev.detail.toString() === peer) gone.abort(new Error('peer disconnected before ping-back completed'))
    }
    node.addEventListener('peer:disconnect', onDisconnect)
    node.services.ping.ping(evt.detail.peerId, { signal: AbortSignal.any([AbortSignal.timeout(10000), gone.signal]) })
      .then(rtt => { log('ping back rtt', rtt, 'ms'); e.pingBack = { rtt } })
      .catch(err => { log('ping back failed:', errMsg(err)); e.pingBack = { error: errMsg(err) } })
      .finally(() => { node.removeEventListener('peer:disconnect', onDisconnect); check(peer) })
    check(peer)
  })

  await node.start()

  // Observe inbound pings: re-register the ping protocol with a wrapper that
  // delegates to the ping service's own (echo) handler and counts the bytes
  // the remote sent; one full 32-byte ping payload counts as "pinged us".
  // (rust-libp2p keeps its ping stream open and pings every 15 s, so waiting
  // for the handler to return would not work.)
  const pingService = node.services.ping
  const pingProtocol = pingService.protocol ?? PING_PROTOCOL
  const originalHandler = pingService.handlePing
  if (typeof originalHandler !== 'function') return fail('cannot hook @libp2p/ping handler (API changed?)')
  await node.handle(pingProtocol, (stream, connection) => {
    const peer = connection.remotePeer.toString()
    log('inbound ping stream from', peer)
    let received = 0
    const onMessage = evt => {
      received += evt.data?.byteLength ?? 0
      if (received >= PING_LENGTH) {
        stream.removeEventListener('message', onMessage)
        log('inbound ping payload from', peer)
        entry(peer).inboundPing = true
        check(peer)
      }
    }
    stream.addEventListener('message', onMessage)
    return originalHandler.call(pingService, stream, connection)
  }, { force: true, maxInboundStreams: 2, maxOutboundStreams: 1, runOnLimitedConnection: true })

  const addrs = node.getMultiaddrs().map(a => a.toString())
  if (addrs.length === 0) return fail('node has no listen addresses')
  log('listening on', addrs.join(' '))
  await new Promise(resolve => process.stdout.write(JSON.stringify({ listening: addrs[0] }) + '\n', resolve))

  let timer
  const timeout = new Promise(resolve => { timer = setTimeout(() => resolve(null), timeoutMs) })
  const peer = await Promise.race([completed, timeout])
  clearTimeout(timer)
  if (peer == null) {
    const state = [...peers].map(([p, e]) => ({ peer: p, identified: e.identify != null, inboundPing: e.inboundPing, pingBack: e.pingBack }))
    return finish({ ok: false, error: `timed out after ${timeoutMs} ms waiting for a peer to identify and ping`, peers: state }, 1)
  }
  const e = peers.get(peer)
  return finish({
    ok: true,
    ...identifyFields(e.identify),
    inboundPing: true,
    rtt_ms: e.pingBack.rtt ?? null,
    ...(e.pingBack.error != null ? { pingBackError: e.pingBack.error } : {})
  }, 0, 1000)
}

const [mode, arg] = process.argv.slice(2)
try {
  if (mode === 'dial' && arg != null) {
    await dialMode(arg)
  } else if (mode === 'listen') {
    await listenMode(arg)
  } else {
    console.error('usage: node interop.mjs dial <multiaddr-with-/p2p/peerid>\n       node interop.mjs listen [listen-multiaddr]')
    process.stdout.write(JSON.stringify({ ok: false, error: 'usage: dial <multiaddr> | listen [multiaddr]' }) + '\n')
    process.exit(2)
  }
} catch (err) {
  log('error:', err?.stack ?? errMsg(err))
  await fail(err)
}
