package store

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/aws/smithy-go/logging"
)

// TestSDKLogger: the SDK's log lines become records of the store's logger
// (the one set last), at the SDK's level.
func TestSDKLogger(t *testing.T) {
	var first, logs bytes.Buffer
	s := New(slog.New(slog.NewJSONHandler(&first, nil)))
	s.SetLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	for _, tc := range []struct {
		c     logging.Classification
		level string
	}{{logging.Warn, "WARN"}, {logging.Debug, "DEBUG"}, {"other", "INFO"}} {
		logs.Reset()
		sdkLogger{s}.Logf(tc.c, "request %d failed\n", 3)
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal(logs.Bytes(), &rec); err != nil {
			t.Fatalf("%s: %v: %q", tc.c, err, logs.String())
		}
		if rec.Level != tc.level || rec.Msg != "object storage SDK: request 3 failed" {
			t.Errorf("%s: logged %+v", tc.c, rec)
		}
	}
	if first.Len() > 0 {
		t.Errorf("logged to the replaced logger: %s", first.String())
	}
}
