package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// fakePushgateway is a Pushgateway in an httptest server, with its
// semantics: PUT replaces a group, POST replaces the metrics of the names
// it pushes and keeps the others, DELETE removes the group.
type fakePushgateway struct {
	*httptest.Server
	mu     sync.Mutex
	groups map[string]map[string]*dto.MetricFamily // group key (groupKey) → name → family
	pushes []received
}

// received is one request the gateway received.
type received struct {
	Method string
	Group  map[string]string // grouping labels, job included
	Names  []string          // the metric names pushed, sorted
}

func newFakePushgateway(t *testing.T) *fakePushgateway {
	g := &fakePushgateway{groups: map[string]map[string]*dto.MetricFamily{}}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		labels, err := groupLabels(r.URL.EscapedPath())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fams := map[string]*dto.MetricFamily{}
		dec := expfmt.NewDecoder(r.Body, expfmt.ResponseFormat(r.Header))
		for {
			var mf dto.MetricFamily
			if err := dec.Decode(&mf); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fams[mf.GetName()] = &mf
		}
		key := groupKey(labels)
		g.mu.Lock()
		defer g.mu.Unlock()
		g.pushes = append(g.pushes, received{r.Method, labels, slices.Sorted(maps.Keys(fams))})
		switch r.Method {
		case http.MethodPut:
			g.groups[key] = fams
		case http.MethodPost:
			if g.groups[key] == nil {
				g.groups[key] = map[string]*dto.MetricFamily{}
			}
			maps.Copy(g.groups[key], fams)
		case http.MethodDelete:
			delete(g.groups, key)
		default:
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(g.Close)
	return g
}

// groupLabels decodes /metrics/job/<job>{/<label>[@base64]/<value>}.
func groupLabels(path string) (map[string]string, error) {
	parts := strings.Split(strings.TrimPrefix(path, "/metrics/"), "/")
	if len(parts)%2 != 0 {
		return nil, fmt.Errorf("bad grouping path %q", path)
	}
	labels := map[string]string{}
	for i := 0; i < len(parts); i += 2 {
		name, value := parts[i], parts[i+1]
		if n, ok := strings.CutSuffix(name, "@base64"); ok {
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
			if err != nil {
				return nil, err
			}
			name, value = n, string(b)
		}
		labels[name] = value
	}
	return labels, nil
}

// groupKey is a canonical key of grouping labels.
func groupKey(labels map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		fmt.Fprintf(&b, "%s=%q,", k, labels[k])
	}
	return b.String()
}

// group is a copy of the metrics of a group: name → the metric's text.
func (g *fakePushgateway) group(labels map[string]string) map[string]*dto.MetricFamily {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.groups[groupKey(labels)])
}

// last is the last push received.
func (g *fakePushgateway) last() (received, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pushes) == 0 {
		return received{}, 0
	}
	return g.pushes[len(g.pushes)-1], len(g.pushes)
}
