package publish

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// What a partition holds, and how its files are named.
//
// Every file of a publish carries the publishing attempt's id, locally as
// on object storage (matches/part-00000-<attempt>.parquet,
// manifest-<attempt>.json, report-<attempt>.html): a name is written once,
// so a file that a _SUCCESS lists is never rewritten and a reader that
// follows _SUCCESS reads one publish or fails on a missing file, never a
// mix of two. _SUCCESS lists the files with their sizes (successBody).
// Partitions of earlier versions have plain names (part-00000.parquet,
// manifest.json, report.html).
//
// The job removes from a partition (an old publish replaced, a leftover
// of a killed upload) only what these names can be: ownName. A directory
// in a partition's place that holds anything else is not batchmatch's and
// is never replaced or removed (foreignEntry).

// attemptPattern is an attempt id (NewAttemptID).
const attemptPattern = `[0-9]{8}T[0-9]{6}Z-[0-9]+-[0-9a-f]{8}`

// tempSuffix is the name of a temporary file next to the one it becomes
// (writeFileSync's "<name>.tmp", fileblob's and the store's
// "<name>.<hex>.tmp").
const tempSuffix = `(\.[0-9a-f]+)?\.tmp`

var (
	// ownFile: a file batchmatch writes into a partition.
	ownFile = regexp.MustCompile(`^(` +
		`(matches|soulmates|rejects|state)/part-[0-9]{5}(-` + attemptPattern + `)?\.parquet` +
		`|manifest(-` + attemptPattern + `)?\.json` +
		`|report(-` + attemptPattern + `)?\.html` +
		`|_SUCCESS` +
		`)(` + tempSuffix + `)?$`)
	// taggedFile: a file of a publish whose name carries its attempt.
	taggedFile = regexp.MustCompile(`^((matches|soulmates|rejects|state)/part-[0-9]{5}|manifest|report)-(` + attemptPattern + `)\.(parquet|json|html)(` + tempSuffix + `)?$`)
)

// ownName reports whether rel (a slash path inside a partition) is a name
// batchmatch writes there.
func ownName(rel string) bool { return ownFile.MatchString(rel) }

// taggedAttempt is the attempt a tagged file name carries ("" if none).
func taggedAttempt(rel string) string {
	m := taggedFile.FindStringSubmatch(rel)
	if m == nil {
		return ""
	}
	return m[3]
}

// tableDirs are the directories of a partition.
var tableDirs = []string{"matches", "soulmates", "rejects", "state"}

// Success is what _SUCCESS says: the run id (equal for every attempt
// that computes the same tables), the attempt that published, the
// manifest, and every file of the publish (slash paths relative to the
// partition) with its size when recorded. A _SUCCESS of an early version
// lists no files; one of a later version lists no sizes.
type Success struct {
	RunID, AttemptID, Manifest string
	Files                      []string
	Sizes                      map[string]int64 // by file; absent: not recorded
}

// ManifestName is the manifest of the publish (manifest.json when
// _SUCCESS does not say).
func (s Success) ManifestName() string {
	if s.Manifest != "" {
		return s.Manifest
	}
	return ManifestFile
}

// listed is what a reader of the publish reads: the files _SUCCESS lists,
// or, for a _SUCCESS that lists none (the earliest versions), the fixed
// names of that time.
func (s Success) listed() []string {
	if len(s.Files) > 0 {
		return s.Files
	}
	files := []string{ManifestFile}
	for _, t := range tableDirs {
		files = append(files, t+"/"+PartFile)
	}
	return files
}

// successBody is what _SUCCESS holds: "run_id", "attempt_id" and
// "manifest" lines, then a "file <path> <size>" line for every file of the
// publish. Readers that read exactly the listed files see one consistent
// publish.
func successBody(runID, attempt, manifest string, files []string, sizes map[string]int64) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "run_id %s\nattempt_id %s\n", runID, attempt)
	if manifest != "" {
		fmt.Fprintf(&b, "manifest %s\n", manifest)
	}
	for _, f := range files {
		if f == SuccessFile {
			continue
		}
		if n, ok := sizes[f]; ok {
			fmt.Fprintf(&b, "file %s %d\n", f, n)
		} else {
			fmt.Fprintf(&b, "file %s\n", f)
		}
	}
	return []byte(b.String())
}

// ParseSuccess reads a _SUCCESS body.
func ParseSuccess(body []byte) Success {
	var s Success
	for _, line := range strings.Split(string(body), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "run_id":
			s.RunID = v
		case "attempt_id":
			s.AttemptID = v
		case "manifest":
			s.Manifest = v
		case "file":
			name, size, ok := strings.Cut(v, " ")
			s.Files = append(s.Files, name)
			if n, err := strconv.ParseInt(size, 10, 64); ok && err == nil && n >= 0 {
				if s.Sizes == nil {
					s.Sizes = map[string]int64{}
				}
				s.Sizes[name] = n
			}
		}
	}
	return s
}

// missingFiles are the files s lists that exist neither as a regular file
// (size reports it: ok false when missing) nor with the size recorded.
func (s Success) missingFiles(size func(rel string) (int64, bool)) []string {
	var missing []string
	for _, f := range s.listed() {
		if !validRel(f) {
			missing = append(missing, f)
			continue
		}
		n, ok := size(f)
		if want, rec := s.Sizes[f]; !ok || rec && n != want {
			missing = append(missing, f)
		}
	}
	return missing
}

// validRel reports whether rel is a clean relative slash path (no "..",
// no absolute path): a listed name that could point outside the partition
// is never followed.
func validRel(rel string) bool {
	return rel != "" && !strings.HasPrefix(rel, "/") && path.Clean(rel) == rel && !strings.HasPrefix(rel, "../") && rel != ".."
}
