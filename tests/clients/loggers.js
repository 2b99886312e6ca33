'use strict'
// Node loggers and shippers, configured as their own READMEs say, sending to a real logharbor
// server. Run by tests/clients/test_node_clients.py:
//   LH_URL=http://127.0.0.1:PORT LH_KEY=lh_... LH_RUN=<token> LH_COUNT=n node loggers.js <client>
// Prints one JSON object on stdout: {"expected": [what each record must look like], "errors":
// [every error the client reported]}; exits 1 when the client reported an error.

const { format } = require('node:util')

const [, , client] = process.argv
const URL_ = process.env.LH_URL
const KEY = process.env.LH_KEY
const RUN = process.env.LH_RUN
const COUNT = Number(process.env.LH_COUNT || 12)
const expected = []
const errors = []

function fail (where) {
  return (err, ...rest) => errors.push(`${where}: ${format(err, ...rest)}`)
}

// anything the libraries print to stderr on their own (pino-loki, winston-loki) is an error too
const writeErr = process.stderr.write.bind(process.stderr)
process.stderr.write = (chunk, ...rest) => {
  errors.push(`stderr: ${chunk}`)
  return writeErr(chunk, ...rest)
}

function attrs (i) {
  return { reqId: `r-${RUN}-${i}`, userId: i, cart: { items: i % 3, 'sku.main': `s-${i}` } }
}

function finish () {
  process.stdout.write(JSON.stringify({ expected, errors }))
  process.exitCode = errors.length ? 1 : 0
}

// pino's levels by name (trace 10 … fatal 60) and the record level logharbor stores for each
const PINO = [['trace', 'TRACE'], ['debug', 'DEBUG'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR'], ['fatal', 'FATAL']]

function pinoLogger (pino, destination, service) {
  let last = 0
  // pino's own epoch-millisecond time, through the hook pino documents, so the test knows it
  const timestamp = () => { last = Date.now(); return `,"time":${last}` }
  const logger = pino({ name: service, level: 'trace', timestamp }, destination)
  for (let i = 0; i < COUNT; i++) {
    const [name, level] = PINO[i % PINO.length]
    const message = `${client} ${RUN} record ${i}`
    logger[name](attrs(i), message)
    expected.push({ message, level, time_ms: last, attrs: attrs(i) })
  }
  return logger
}

async function pinoElasticsearch () {
  const pino = require('pino')
  const pinoEs = require('pino-elasticsearch')
  const stream = pinoEs({
    index: 'shop-pino', node: URL_, esVersion: 8, flushBytes: 2000, flushInterval: 300,
    auth: { username: 'logharbor', password: KEY }
  })
  stream.on('error', fail('error'))
  stream.on('insertError', fail('insertError'))
  stream.on('unknown', fail('unknown'))
  const inserted = new Promise((resolve) => stream.on('insert', resolve))
  pinoLogger(pino, stream, 'shop-pino-es')
  stream.end()
  const stats = await Promise.race([inserted, new Promise((resolve) => stream.on('error', resolve))])
  if (!stats || stats.failed) errors.push(`bulk helper stats: ${JSON.stringify(stats)}`)
}

async function pinoLoki () {
  const pino = require('pino')
  const { pinoLoki } = require('pino-loki')
  const transport = pinoLoki({
    host: URL_, basicAuth: { username: 'logharbor', password: KEY },
    labels: { app: 'shop-pino-loki' }, batching: { interval: 0.3 }
  })
  const closed = new Promise((resolve) => transport.on('close', resolve))
  pinoLogger(pino, transport, 'shop-pino-loki')
  transport.end()
  await closed
}

// winston's npm levels used here, and what logharbor stores for each
const WINSTON = [['debug', 'DEBUG'], ['info', 'INFO'], ['warn', 'WARN'], ['error', 'ERROR']]

function winstonLogger (winston, transport, recordTime) {
  const { combine, timestamp, json } = winston.format
  const logger = winston.createLogger({
    level: 'debug',
    // an offset time (the process runs with TZ=Asia/Kolkata): the zone must be read, not assumed
    format: combine(timestamp({ format: 'YYYY-MM-DDTHH:mm:ss.SSSZZ' }), recordTime(), json()),
    defaultMeta: { service: `shop-${client}` },
    transports: [transport]
  })
  logger.on('error', fail('logger'))
  for (let i = 0; i < COUNT; i++) {
    const [name, level] = WINSTON[i % WINSTON.length]
    const message = `${client} ${RUN} record ${i}`
    logger.log(name, message, attrs(i))
    expected.push({ message, level, time: lastWinstonTime, attrs: attrs(i) })
  }
  return logger
}

let lastWinstonTime = null

function timeRecorder (winston) {
  // the timestamp winston put on the record (formats run synchronously inside logger.log)
  return winston.format((info) => {
    lastWinstonTime = info.timestamp
    return info
  })
}

async function winstonElasticsearch () {
  const winston = require('winston')
  const { ElasticsearchTransport } = require('winston-elasticsearch')
  const transport = new ElasticsearchTransport({
    level: 'debug', index: 'shop-winston', flushInterval: 300,
    clientOpts: { node: URL_, auth: { username: 'logharbor', password: KEY } }
  })
  transport.on('error', fail('transport'))
  const logger = winstonLogger(winston, transport, timeRecorder(winston))
  await transport.flush()
  logger.end()
}

async function winstonLoki () {
  const winston = require('winston')
  const LokiTransport = require('winston-loki')
  const transport = new LokiTransport({
    // protobuf + snappy (the default), one JSON line per record (the README's format option)
    host: URL_, basicAuth: `logharbor:${KEY}`, labels: { app: 'shop-winston-loki' },
    format: winston.format.json(), replaceTimestamp: false, interval: 0.3,
    onConnectionError: fail('onConnectionError')
  })
  const logger = winstonLogger(winston, transport, timeRecorder(winston))
  await transport.flush()
  logger.end()
}

async function otelLogs () {
  const { logs, SeverityNumber } = require('@opentelemetry/api')
  const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs')
  const { OTLPLogExporter } = require('@opentelemetry/exporter-logs-otlp-http')
  const { resourceFromAttributes } = require('@opentelemetry/resources')
  const exporter = new OTLPLogExporter({
    url: `${URL_}/v1/logs`, headers: { Authorization: `Bearer ${KEY}` }
  })
  const exported = exporter.export.bind(exporter)
  exporter.export = (items, done) => exported(items, (result) => {
    if (result.code !== 0) errors.push(`export: ${format(result.error)}`)
    done(result)
  })
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'shop-otel-js', 'service.version': '3.1.0' }),
    processors: [new BatchLogRecordProcessor({ exporter, scheduledDelayMillis: 300 })]
  })
  logs.setGlobalLoggerProvider(provider)
  const logger = logs.getLogger('shop.checkout', '1.0.0')
  const levels = [[SeverityNumber.DEBUG, 'DEBUG', 'DEBUG'], [SeverityNumber.INFO, 'INFO', 'INFO'],
    [SeverityNumber.WARN, 'WARN', 'WARN'], [SeverityNumber.ERROR, 'ERROR', 'ERROR'],
    [SeverityNumber.INFO2, 'INFO2', 'INFO']]
  const base = Math.floor(Date.now() / 1000)
  for (let i = 0; i < COUNT; i++) {
    const [number, text, level] = levels[i % levels.length]
    const message = `${client} ${RUN} record ${i}`
    const nanos = 123456789 + i // nanosecond precision, to be kept
    const a = attrs(i)
    logger.emit({
      timestamp: [base, nanos], severityNumber: number, severityText: text, body: message,
      attributes: { reqId: a.reqId, userId: a.userId, cart: a.cart, 'http.route': '/cart' }
    })
    expected.push({ message, level, time_s: base, time_ns: nanos, attrs: { ...a, 'http.route': '/cart' }, severity_text: text })
  }
  await provider.forceFlush()
  await provider.shutdown()
}

const CLIENTS = {
  'pino-elasticsearch': pinoElasticsearch,
  'pino-loki': pinoLoki,
  'winston-elasticsearch': winstonElasticsearch,
  'winston-loki': winstonLoki,
  'otel-js': otelLogs
}

const run = CLIENTS[client]
if (!run) {
  errors.push(`unknown client ${client}`)
  finish()
} else {
  run().then(finish, (err) => { errors.push(`thrown: ${format(err)}`); finish() })
}
