package pipeline

import (
	"context"
	"fmt"
	"io"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
)

// Explain loads the population of cfg and writes, for one id, the member
// explanation (the member's place in a whole run: blocking, scoring and the
// soulmate assignment of everyone), and for two ids, the pair explanation. A member who is not
// eligible (unknown, rejected, without consent or suppressed) is reported
// only as "not an eligible member", so that erasures stay invisible.
func Explain(ctx context.Context, cfg Config, env Env, w io.Writer, ids []int64) error {
	if len(ids) < 1 || len(ids) > 2 {
		return failure.Usagef("explain takes one member id or two")
	}
	if len(ids) == 2 && ids[0] == ids[1] {
		return failure.Usagef("explain: the two member ids are the same member (%d): give one id to explain a member, two different ones for a pair", ids[0])
	}
	L, err := load(ctx, cfg, env.Alloc, env.logger(), nil)
	if err != nil {
		return err
	}
	idx := make([]int, len(ids))
	ok := true
	for k, id := range ids {
		if idx[k] = L.Pop.Index(id); idx[k] < 0 {
			fmt.Fprintf(w, "member %d: not an eligible member\n", id)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	sc := &match.Scorer{P: L.Pop, W: cfg.Weights, ReleaseColumns: true}
	if len(ids) == 2 {
		sc.ExplainPair(idx[0], idx[1]).Write(w)
		return nil
	}
	lists, _, err := sc.TopK(ctx, match.Block(L.Pop), cfg.K, cfg.Workers)
	if err != nil {
		return err
	}
	sc.ExplainMember(idx[0], lists, match.Soulmates(lists), max(cfg.K, 5)).Write(w, L.Pop)
	return nil
}
