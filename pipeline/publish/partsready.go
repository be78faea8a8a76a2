package publish

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// PartsReady reports, from a listing only, whether every shard of the
// sharded run for asOf under out (count shards; 0: whichever count has
// parts) has a complete part: nil when all do, an error wrapping
// failure.NotReady that names the missing indices when some do not.
//
// `batchmatch night` asks it after writing its own part, to decide whether
// this shard completed the set and so commits. The shards that did not
// complete it then neither take the output lock nor, on object storage,
// download the other shards' parts: Commit itself finds out that a part is
// missing only after downloading the complete ones. It checks what Commit
// checks first (one complete part per index), never more, so that the last
// shard to finish always goes on to Commit, which makes every other check.
func PartsReady(ctx context.Context, out, partition string, asOf time.Time, count int) error {
	partition = PartitionOr(partition, asOf)
	if !store.IsURL(out) {
		return localPartsReady(out, partition, count)
	}
	root := store.Join(out, StagingDir, shardsDir, partition)
	keys, err := store.Default().List(ctx, root)
	if err != nil {
		return failure.IOf("listing the shard parts: %w", err)
	}
	// complete parts: <count>/<index>/<attempt>/part.json, as a commit to object storage
	// chooses them
	have := map[int]map[int]bool{}
	for _, k := range keys {
		seg := strings.Split(k, "/")
		if len(seg) != 4 || seg[3] != "part.json" {
			continue
		}
		n, err1 := strconv.Atoi(seg[0])
		i, err2 := strconv.Atoi(seg[1])
		if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
			continue
		}
		if have[n] == nil {
			have[n] = map[int]bool{}
		}
		have[n][i] = true
	}
	if count == 0 {
		for n := range have {
			if count != 0 {
				return failure.Usagef("parts of several shard counts under %s: pass --shard-count", RedactURL(root))
			}
			count = n
		}
		if count == 0 {
			return fmt.Errorf("%w: no complete shard part under %s", failure.NotReady, RedactURL(root))
		}
	}
	var missing []int
	for i := range count {
		if !have[count][i] {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %d of %d shards have no complete part yet under %s: indices %v",
			failure.NotReady, len(missing), count, RedactURL(root), missing)
	}
	return nil
}

// localPartsReady is PartsReady for a local OUT: whether the newest set
// of parts (by shard run id, as Commit groups them) is complete. Nothing
// is created and no link is followed.
func localPartsReady(out, partition string, count int) error {
	where := filepath.Join(out, StagingDir, shardsDir, partition)
	if _, err := os.Lstat(out); err != nil {
		return fmt.Errorf("%w: no complete shard part under %s yet: indices %v", failure.NotReady, where,
			(&PartSet{parts: make([]*partAttempt, count)}).missing())
	}
	root, err := openOutRoot(out, nil)
	if err != nil {
		return err
	}
	defer root.Close()
	var shards *outDir
	if st, ok, err := root.lstat(StagingDir); err != nil {
		return err
	} else if ok && isDir(st) {
		tmp, err := root.sub(StagingDir, false)
		if err != nil {
			return err
		}
		defer tmp.Close()
		if st, ok, err := tmp.lstat(shardsDir); err != nil {
			return err
		} else if ok && isDir(st) {
			if shards, err = tmp.sub(shardsDir, false); err != nil {
				return err
			}
			defer shards.Close()
		}
	}
	count, found, _, err := scanParts(shards, partition, count)
	if err != nil {
		return err
	}
	sets := groupParts(count, found)
	if len(sets) == 0 {
		if count == 0 {
			return fmt.Errorf("%w: no complete shard part under %s yet", failure.NotReady, where)
		}
		return fmt.Errorf("%w: %d of %d shards have no complete part yet under %s: indices %v",
			failure.NotReady, count, count, where, (&PartSet{parts: make([]*partAttempt, count)}).missing())
	}
	if m := sets[0].missing(); len(m) > 0 {
		return fmt.Errorf("%w: %d of %d shards have no complete part yet under %s: indices %v (%s)",
			failure.NotReady, len(m), count, where, m, sets[0].Describe())
	}
	return nil
}

// IsPublished reports whether the partition for asOf under out is published
// (its _SUCCESS exists), locally or in object storage. `batchmatch night`
// asks before committing: a partition that was not published then but is
// when its commit looks was published by another shard of the same night.
func IsPublished(ctx context.Context, out, partition string, asOf time.Time) (bool, error) {
	partition = PartitionOr(partition, asOf)
	if !store.IsURL(out) {
		return PublishedDir(filepath.Join(out, partition)), nil
	}
	dst := store.Join(out, partition)
	ok, err := store.Default().Exists(ctx, store.Join(dst, SuccessFile))
	if err != nil {
		return false, failure.IOf("checking %s: %w", RedactURL(dst), err)
	}
	return ok, nil
}
