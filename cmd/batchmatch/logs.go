package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// Logs go to stderr, as text or as JSON. In JSON every line on stderr is
// one JSON object: the logs, the final error line (finalLine), usage
// errors and the object-storage SDK's lines (pipeline/store routes them to
// the run's logger); pflag prints nothing of its own (parse), and help goes
// to stdout.

// logOptions are the logging flags every command shares.
type logOptions struct {
	Format string
	Level  string
}

// defaultLogOptions are the logging flags' defaults.
var defaultLogOptions = logOptions{Format: "auto", Level: "info"}

// AddFlags registers the logging flags.
func (o *logOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Format, "log-format", defaultLogOptions.Format, "log format: text, json, or auto (text on a terminal, json otherwise); any case")
	fs.StringVar(&o.Level, "log-level", defaultLogOptions.Level, "log level: debug, info, warn, error; any case")
}

// format is the format the options ask for on w: "text" or "json".
func (o logOptions) format(w io.Writer) (string, error) {
	switch f := strings.ToLower(o.Format); f {
	case "auto":
		if isTerminal(w) {
			return "text", nil
		}
		return "json", nil
	case "text", "json":
		return f, nil
	}
	return "", fmt.Errorf("%w: --log-format must be text, json or auto, got %q", failure.Usage, o.Format)
}

// json reports whether the options make the lines on w JSON (a bad
// --log-format counts as auto).
func (o logOptions) json(w io.Writer) bool {
	f, err := o.format(w)
	if err != nil {
		f, _ = defaultLogOptions.format(w)
	}
	return f == "json"
}

// logger is the logger the flags ask for, writing to w.
func (o *logOptions) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.Level)); err != nil { // any case
		return nil, fmt.Errorf("%w: --log-level must be debug, info, warn or error, got %q", failure.Usage, o.Level)
	}
	format, err := o.format(w)
	if err != nil {
		return nil, err
	}
	hopts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: secondsAttr}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, hopts)), nil
}

// secondsAttr logs a time.Duration as a number of seconds with the unit in
// its key ("backoff" → "backoff_seconds": 0.2), whoever logged it: slog's
// JSON handler would write nanoseconds, its text handler "200ms".
func secondsAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_seconds", a.Value.Duration().Seconds())
	}
	return a
}

// isTerminal reports whether w is a terminal (a person is watching).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
