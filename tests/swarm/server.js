// amqp-swarm's own server, for the gateway benchmark
// (tests/benches/gateway.rs): `createNode` per WebSocket connection, with
// the echo handler Berth's swarm-node guest has. Usage: node server.js PORT
// (RabbitMQ on 127.0.0.1:5672 carries amqp-swarm's node-to-node traffic;
// it is connected before `ready` is printed).
'use strict'
const amqpSwarm = require('amqp-swarm')
const WebSocket = require('ws')

const port = Number(process.argv[2])
const server = amqpSwarm.server({ url: process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672' })
server.connected().then(() => {
  const wss = new WebSocket.Server({ host: '127.0.0.1', port }, () => process.stdout.write('ready\n'))
  wss.on('connection', async (ws, request) => {
    const node = await server.createNode(request.url, ws)
    node.client.on('echo', (ctx, ...args) => args)
  })
})
