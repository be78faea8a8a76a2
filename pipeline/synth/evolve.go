package synth

import (
	"math"
	"math/rand/v2"
	"slices"
)

// EventKind is one kind of change an evolving population goes through
// between two nights.
type EventKind uint8

// The kinds of change, in the order their shares are listed (eventShares).
// The order is part of the seed's meaning.
const (
	SignUp           EventKind = iota // a new member (a new row)
	EditLocation                      // moves: to another member's town, or a few km
	EditPreferences                   // accepted ages, max_km, now and then the genders sought
	EditAnswers                       // a few questions re-answered (answer, accepted options, importance)
	EditTraits                        // the trait embedding drifts, or jumps to another member's
	Leave                             // the member's row is gone
	Erase                             // an erasure request: the id joins the suppression list
	ConsentWithdrawn                  // consent becomes false
	ConsentGiven                      // a member without consent gives it
	BlockAdded                        // the member blocks someone nearby they could match
	numEventKinds
)

// EventKinds lists every kind of change.
func EventKinds() []EventKind {
	ks := make([]EventKind, numEventKinds)
	for k := range ks {
		ks[k] = EventKind(k)
	}
	return ks
}

// String names the kind as gen logs it.
func (k EventKind) String() string {
	return [...]string{"sign_up", "edit_location", "edit_preferences", "edit_answers", "edit_traits",
		"leave", "erase", "consent_withdrawn", "consent_given", "block_added"}[k]
}

// eventShares is how a night's changes split between the kinds: a fifth
// are sign-ups, two fifths profile edits, the rest members leaving, erased,
// withdrawing or giving consent, and blocks.
var eventShares = []float64{0.20, 0.12, 0.10, 0.10, 0.08, 0.10, 0.05, 0.08, 0.07, 0.10}

var eventCDF = cdf(eventShares)

// Evolution is a population that changes night after night: night 0 is
// the base members [0, N0); each later night applies round(Churn × the
// members present) changes, each of a kind drawn by eventShares to a
// member drawn uniformly, deterministically from Seed (night k's changes
// depend on Seed and k only, so night K replays nights 1..K). Birthdays
// need no event: they happen as the runs' as-of date advances.
type Evolution struct {
	Seed  uint64
	N0    int
	Churn float64
	// Base draws the member of a slot as first written: slots [0, N0) are
	// night 0's members, later slots are sign-ups, in the order they
	// sign up. It must be deterministic.
	Base func(slot int) Member
	// ID, when set, is Base(slot).ID without drawing the member (nil:
	// from Base).
	ID func(slot int) (int64, bool)
}

// Night is one night of an Evolution: the rows present, the suppression
// list and the blocked pairs so far.
type Night struct {
	ev *Evolution
	K  int
	// Slots are the rows of the night's profiles, in slot order: every
	// member present, and members erased tonight (their row is still
	// there on the night of the request; the suppression list removes it).
	Slots []int
	// Suppress is every id erased so far, in the order of the requests.
	Suppress []int64
	// Blocks are the pairs blocked so far, in the order they were added.
	Blocks [][2]int64
	// Events counts tonight's changes by kind (night 0: none).
	Events  [numEventKinds]int
	edits   map[int][]edit
	consent map[int]bool
}

// edit is one change to a member's row: its kind and the night it
// happened (which seeds it).
type edit struct {
	kind  EventKind
	night int
	seq   int
}

func (e *Evolution) id(slot int) (int64, bool) {
	if e.ID != nil {
		return e.ID(slot)
	}
	m := e.Base(slot)
	if m.ID == nil {
		return 0, false
	}
	return *m.ID, true
}

// Night replays nights 1..k and returns night k.
func (e *Evolution) Night(k int) *Night {
	n := &Night{ev: e, K: k, edits: map[int][]edit{}, consent: map[int]bool{}}
	live := make([]int, e.N0)
	pos := make([]int, e.N0) // slot → index in live, -1 when gone
	for i := range live {
		live[i], pos[i] = i, i
	}
	remove := func(s int) {
		i := pos[s]
		last := live[len(live)-1]
		live[i], pos[last] = last, i
		live = live[:len(live)-1]
		pos[s] = -1
	}
	next := e.N0
	var erasedTonight []int
	for night := 1; night <= k; night++ {
		r := rand.New(rand.NewPCG(e.Seed^0x5851f42d4c957f2d, uint64(night)))
		erasedTonight = erasedTonight[:0]
		n.Events = [numEventKinds]int{}
		events := int(math.Round(e.Churn * float64(len(live))))
		for seq := range events {
			kind := EventKind(pick(r, eventCDF))
			if kind != SignUp && len(live) < 2 {
				continue
			}
			switch kind {
			case SignUp:
				live = append(live, next)
				pos = append(pos, len(live)-1)
				next++
			case EditLocation, EditPreferences, EditAnswers, EditTraits:
				s := live[r.IntN(len(live))]
				n.edits[s] = append(n.edits[s], edit{kind, night, seq})
			case Leave:
				remove(live[r.IntN(len(live))])
			case Erase:
				s := live[r.IntN(len(live))]
				id, ok := e.id(s)
				if !ok {
					continue
				}
				remove(s)
				n.Suppress = append(n.Suppress, id)
				erasedTonight = append(erasedTonight, s)
			case ConsentWithdrawn:
				n.consent[live[r.IntN(len(live))]] = false
			case ConsentGiven:
				// the first of a few members drawn who has no consent now
				for range 16 {
					s := live[r.IntN(len(live))]
					if !n.consents(s) {
						n.consent[s] = true
						break
					}
				}
			case BlockAdded:
				a := live[r.IntN(len(live))]
				b, ok := n.blockTarget(r, a, live)
				ida, okA := e.id(a)
				idb, okB := e.id(b)
				if !ok || !okA || !okB {
					continue
				}
				n.Blocks = append(n.Blocks, [2]int64{ida, idb})
			}
			n.Events[kind]++
		}
	}
	n.Slots = append(slices.Clone(live), erasedTonight...)
	slices.Sort(n.Slots)
	return n
}

// consents reports whether slot s's row, as it is now, says consent true.
func (n *Night) consents(s int) bool {
	if c, ok := n.consent[s]; ok {
		return c
	}
	m := n.ev.Base(s)
	return m.Consent != nil && *m.Consent
}

// blockTarget picks whom a blocks: of a few members drawn, one a could
// match by orientation (both ways), the nearest; or the first drawn.
func (n *Night) blockTarget(r *rand.Rand, a int, live []int) (int, bool) {
	ma := n.ev.Base(a)
	best, bestD := -1, math.Inf(1)
	first := -1
	for range 16 {
		b := live[r.IntN(len(live))]
		if b == a {
			continue
		}
		if first < 0 {
			first = b
		}
		mb := n.ev.Base(b)
		if ma.Gender == nil || mb.Gender == nil || ma.Seeking == nil || mb.Seeking == nil || ma.Lat == nil || mb.Lat == nil ||
			ma.Lon == nil || mb.Lon == nil || *ma.Gender > 2 || *mb.Gender > 2 ||
			*ma.Seeking&(1<<*mb.Gender) == 0 || *mb.Seeking&(1<<*ma.Gender) == 0 {
			continue
		}
		dlat, dlon := *ma.Lat-*mb.Lat, (*ma.Lon-*mb.Lon)*math.Cos(*ma.Lat*math.Pi/180)
		if d := dlat*dlat + dlon*dlon; d < bestD {
			best, bestD = b, d
		}
	}
	if best < 0 {
		best = first
	}
	return best, best >= 0
}

// Rows is how many profile rows the night has.
func (n *Night) Rows() int { return len(n.Slots) }

// Member draws row i of the night: the slot's base member with every
// edit up to this night applied in order, and its consent as changed.
func (n *Night) Member(row int) Member {
	s := n.Slots[row]
	m := n.ev.Base(s)
	for _, ed := range n.edits[s] {
		n.apply(&m, s, ed)
	}
	if c, ok := n.consent[s]; ok {
		m.Consent = Ptr(c)
	}
	return m
}

// Members draws every row of the night.
func (n *Night) Members() []Member {
	out := make([]Member, len(n.Slots))
	for i := range out {
		out[i] = n.Member(i)
	}
	return out
}

// apply changes m by one edit, with a generator seeded by the slot, the
// night and the edit's place in it. Values stay valid when they were.
func (n *Night) apply(m *Member, slot int, ed edit) {
	r := rand.New(rand.NewPCG(n.ev.Seed^0xa0761d6478bd642f^uint64(ed.night)<<32^uint64(ed.seq), uint64(slot)))
	switch ed.kind {
	case EditLocation:
		if m.Lat == nil || m.Lon == nil {
			return
		}
		lat, lon := *m.Lat, *m.Lon
		if r.Float64() < 0.5 { // moves to another member's town
			o := n.ev.Base(r.IntN(max(n.ev.N0, 1)))
			if o.Lat != nil && o.Lon != nil && *o.Lat >= -90 && *o.Lat <= 90 && *o.Lon >= -180 && *o.Lon <= 180 {
				lat, lon = *o.Lat, *o.Lon
			}
		}
		lat += 0.02 * r.NormFloat64()
		lon += 0.02 * r.NormFloat64()
		if *m.Lat >= -90 && *m.Lat <= 90 { // a valid latitude stays valid
			lat = math.Max(-90, math.Min(90, lat))
		}
		if *m.Lon >= -180 && *m.Lon <= 180 {
			for lon > 180 {
				lon -= 360
			}
			for lon < -180 {
				lon += 360
			}
		}
		m.Lat, m.Lon = Ptr(lat), Ptr(lon)
	case EditPreferences:
		if m.AgeMin != nil && m.AgeMax != nil && *m.AgeMin <= *m.AgeMax && *m.AgeMax <= 99 {
			lo, hi := *m.AgeMin+int64(r.IntN(7)-3), *m.AgeMax+int64(r.IntN(7)-3)
			lo = min(max(lo, 18), 99)
			hi = min(max(hi, lo), 99)
			m.AgeMin, m.AgeMax = Ptr(lo), Ptr(hi)
		}
		if m.MaxKm != nil && *m.MaxKm > 0 && *m.MaxKm < 1e6 {
			m.MaxKm = Ptr(float32(math.Max(1, float64(*m.MaxKm)*math.Exp2(2*r.Float64()-1))))
		}
		if m.Seeking != nil && *m.Seeking >= 1 && *m.Seeking <= 7 && r.Float64() < 0.1 {
			m.Seeking = Ptr(int64(1 + r.IntN(7)))
		}
	case EditAnswers:
		q := min(len(m.Ans), len(m.Acc), len(m.Imp))
		if q == 0 {
			return
		}
		m.Ans, m.Acc, m.Imp = slices.Clone(m.Ans), slices.Clone(m.Acc), slices.Clone(m.Imp)
		for range 1 + r.IntN(4) {
			k := r.IntN(q)
			if m.Ans[k] <= 8 {
				m.Ans[k] = byte(r.IntN(5)) // 0: now unanswered
			}
			m.Acc[k] = byte(r.IntN(256))
			if m.Imp[k] <= 4 {
				m.Imp[k] = byte(r.IntN(4))
				if r.Float64() < 0.05 {
					m.Imp[k] = 4
				}
			}
		}
	case EditTraits:
		if len(m.Trait) == 0 {
			return
		}
		t := slices.Clone(m.Trait)
		if r.Float64() < 0.3 { // jumps towards another member's
			if o := n.ev.Base(r.IntN(max(n.ev.N0, 1))); len(o.Trait) == len(t) {
				copy(t, o.Trait)
			}
		}
		var ss float64
		for _, v := range t {
			ss += float64(v) * float64(v)
		}
		rms := math.Sqrt(ss / float64(len(t)))
		if !(rms > 1e-30 && rms < 1e30) { // invalid or extreme rows are left as they are
			return
		}
		for j := range t {
			t[j] += float32(0.5 * rms * r.NormFloat64())
		}
		m.Trait = t
	}
}
