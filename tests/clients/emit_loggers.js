// Writes the same few events with pino, bunyan and winston, configured as their docs show,
// one "<logger>\t<line>" per line on stdout; tests/record/test_dialects.py reads what they wrote.
'use strict';
const { Writable } = require('stream');
const pino = require('pino');
const bunyan = require('bunyan');
const winston = require('winston');

function capture(name) {
  return new Writable({
    write(chunk, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        if (line) process.stdout.write(`${name}\t${line}\n`);
      }
      done();
    },
  });
}

function boom() {
  return new Error('card declined');
}

// pino: its defaults (epoch ms `time`, numeric `level`, `pid`, `hostname`), a `name`, trace on
const pl = pino({ name: 'checkout', level: 'trace' }, capture('pino'));
pl.trace('tracing cart');
pl.debug('cache miss');
pl.info({ requestId: 'req-pino-1', orderId: 42 }, 'order %s placed', 'o-42');
pl.warn('slow payment');
pl.error(boom(), 'payment failed');
pl.fatal('out of memory');

// bunyan: createLogger({name}) with the standard serializers (err)
const b = bunyan.createLogger({
  name: 'billing', level: 'trace', serializers: bunyan.stdSerializers,
  streams: [{ stream: capture('bunyan'), level: 'trace' }],
});
b.trace('tracing invoice');
b.debug('cache miss');
b.info({ requestId: 'req-bunyan-1' }, 'invoice sent');
b.warn('slow smtp');
b.error({ err: boom() }, 'charge failed');
b.fatal('disk gone');

// winston: json() with timestamp(), errors({stack: true}) and defaultMeta {service}, npm levels
const w = winston.createLogger({
  level: 'silly',
  format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }),
    winston.format.json()),
  defaultMeta: { service: 'orders' },
  transports: [new winston.transports.Stream({ stream: capture('winston') })],
});
w.silly('very chatty');
w.debug('cache miss');
w.verbose('verbose detail');
w.http('GET /orders 200');
w.info('order placed', { requestId: 'req-winston-1' });
w.warn('slow payment');
w.error(boom());
w.end();
