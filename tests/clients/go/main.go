// Writes the JSON lines of three Go loggers as each is configured by its own documentation, one
// "<logger>\t<line>" per record on stdout, for tests/clients/test_go_loggers.py.
// Built from Debian's packages in GOPATH mode (GOPATH=/usr/share/gocode, GO111MODULE=off).
package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	pkgerrors "github.com/pkg/errors"
	"github.com/rs/zerolog"
	zlpkgerrors "github.com/rs/zerolog/pkgerrors"
	"github.com/sirupsen/logrus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func emit(name string, buf *bytes.Buffer) {
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		if line != "" {
			fmt.Printf("%s\t%s\n", name, line)
		}
	}
	buf.Reset()
}

type bufferSink struct{ *bytes.Buffer }

func (bufferSink) Sync() error { return nil }

func main() {
	var buf bytes.Buffer

	// zap: NewProductionConfig (JSON, epoch-seconds "ts", "caller", "stacktrace" on errors)
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	core := zapcore.NewCore(enc, zapcore.AddSync(bufferSink{&buf}), zapcore.DebugLevel)
	zl := zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel))
	zl.Info("zap started", zap.String("url", "http://example.com"), zap.Int("attempt", 3))
	zl.Warn("zap slow", zap.Duration("took", 1500*time.Millisecond))
	zl.Error("zap request failed", zap.Error(fmt.Errorf("connection refused")), zap.String("requestId", "r-7"))
	zl.Debug("zap debug detail")
	_ = zl.Sync()
	emit("zap", &buf)

	// zerolog: its README's setup (Unix time, pkgerrors stack marshaler)
	zerolog.TimeFieldFormat = zerolog.TimeFormatUnixMs
	zerolog.ErrorStackMarshaler = zlpkgerrors.MarshalStack
	zg := zerolog.New(&buf).With().Timestamp().Logger()
	zg.Debug().Str("user", "u-1").Msg("zerolog hello")
	zg.Warn().Int("queue", 12).Msg("zerolog queue high")
	zg.Error().Stack().Err(pkgerrors.New("disk gone")).Msg("zerolog write failed")
	emit("zerolog", &buf)

	// logrus: JSONFormatter (RFC 3339 time with the local offset: the test runs it in Asia/Kolkata)
	lr := logrus.New()
	lr.SetOutput(&buf)
	lr.SetFormatter(&logrus.JSONFormatter{})
	lr.SetLevel(logrus.TraceLevel)
	lr.WithFields(logrus.Fields{"animal": "walrus", "number": 122}).Info("logrus a walrus appears")
	lr.Warn("logrus the group's number increased")
	lr.WithError(fmt.Errorf("no such table")).Error("logrus query failed")
	lr.Trace("logrus trace detail")
	emit("logrus", &buf)
	os.Exit(0)
}
