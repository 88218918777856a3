// Drives the real `amqp-swarm@0.3.2` client against a Berth gateway, for
// tests/tests/gateway*.rs. Usage: node client.js SCENARIO URL [URL2]
// Prints one JSON line with what happened; the Rust test asserts on it.
'use strict'
const amqpSwarm = require('amqp-swarm')
const readline = require('readline')

const [scenario, url, url2] = process.argv.slice(2)

// What a request came to: its result, or its error's fields.
const outcome = (promise) => promise.then(
  (result) => ({ result }),
  (err) => ({ error: { type: err.type, subtype: err.subtype, message: err.message, data: err.data } })
)
const timed = async (promise) => {
  const started = Date.now()
  const out = await outcome(promise)
  out.ms = Date.now() - started
  return out
}
const print = (value) => process.stdout.write(JSON.stringify(value) + '\n')
const lines = readline.createInterface({ input: process.stdin })
const nextLine = () => new Promise((resolve) => lines.once('line', resolve))
// The client queues what it sends before `init`; a request it sent while
// reconnecting times out after 1 s, so ask until one gets through.
const untilAnswered = async (send, within = 15000) => {
  const until = Date.now() + within
  let last
  while (Date.now() < until) {
    last = await outcome(send())
    if (!last.error || last.error.subtype !== 'timeout') return last
  }
  return last
}

const scenarios = {
  async basics () {
    const client = amqpSwarm.client(`${url}/alice`)
    client.on('is that legal?', () => 'i will make it legal')
    client.on('stormtrooper', () => { throw new TypeError('clone') })
    const out = {}
    out.hello = await untilAnswered(() => client.send('hello there', 'kenobi'))
    out.endpoint = await outcome(client.send('hello there', 'anakin'))
    out.unhandled = await outcome(client.send('kamino'))
    out.timeout = await timed(client.send('spin', 900))
    out.echo = await outcome(client.send('echo', 1, { a: [2] }, 'x'))
    out.askBack = await outcome(client.send('ask back', 'is that legal?'))
    out.askBackThrows = await outcome(client.send('ask back', 'stormtrooper'))
    out.askBackUnhandled = await outcome(client.send('ask back', 'order 66'))
    // The open event reaches the component on its own time: ask until it has.
    for (let i = 0; i < 250; i++) {
      out.peers = await outcome(client.send('peers'))
      if (out.peers.result && out.peers.result.includes('alice')) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    client.close()
    return out
  },

  async reconnect () {
    const client = amqpSwarm.client(`${url}/phoenix`)
    client.on('who', () => 'phoenix')
    const before = await untilAnswered(() => client.send('hello there', 'before'))
    print({ ready: true, before })
    await nextLine()
    const after = await untilAnswered(() => client.send('hello there', 'after'))
    const askBack = await outcome(client.send('ask back', 'who'))
    client.close()
    return { after, askBack }
  },

  async flood () {
    const count = Number(process.env.SWARM_CLIENTS || 1000)
    const clients = Array.from({ length: count }, (_, i) => amqpSwarm.client(`${url}/n${i}`))
    // A thousand clients opening at once on two shared cores: a client
    // that did not see `init` within its library's 1 s reopens, so some
    // go round a few times before the crowd thins.
    const answers = await Promise.all(clients.map((c, i) => untilAnswered(() => c.send('echo', i), 45000)))
    const right = answers.filter((a, i) => a.result && a.result[0] === i).length
    const wrong = answers.filter((a, i) => !(a.result && a.result[0] === i)).slice(0, 3)
    print({ connected: count, right, wrong })
    await nextLine() // the test reads the host's counters meanwhile
    clients.forEach((c) => c.close())
    return { right, wrong }
  },

  async twoHosts () {
    // Node ids unique to the run: the broker is shared.
    const tag = process.env.SWARM_TAG || ''
    const [a, b] = [`alice${tag}`, `bob${tag}`]
    const alice = amqpSwarm.client(`${url}/${a}`)
    const bob = amqpSwarm.client(`${url2}/${b}`)
    alice.on('greet', (ctx, x) => `alice got ${x}`)
    bob.on('greet', (ctx, x) => `bob got ${x}`)
    const out = {}
    // Each node is reachable once its host has answered it.
    await untilAnswered(() => alice.send('echo'))
    await untilAnswered(() => bob.send('echo'))
    out.aliceTellsBob = await outcome(alice.send('tell', b, 'whoami'))
    out.bobTellsAlice = await outcome(bob.send('tell', a, 'whoami'))
    out.aliceRelaysBob = await outcome(alice.send('relay', b, 'greet', 'hi'))
    out.bobRelaysAlice = await outcome(bob.send('relay', a, 'greet', 'yo'))
    out.blocked = await outcome(alice.send('relay', b, 'blocked'))
    out.nobody = await outcome(alice.send('tell', `nobody${tag}`, 'whoami'))
    alice.close()
    bob.close()
    return out
  }
}

scenarios[scenario]().then(
  (out) => { print(out); process.exit(0) },
  (err) => { print({ crashed: String(err && err.stack) }); process.exit(1) }
)
