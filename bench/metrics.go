package bench

import (
	"bufio"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Sample is one line of the Prometheus text format: a series and its
// value.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Metrics is one scrape of a /metrics page.
type Metrics []Sample

// ParseMetrics reads the Prometheus text exposition format (what weft's
// /metrics serves): comment lines are skipped, a line that does not parse
// is an error naming it.
func ParseMetrics(text string) (Metrics, error) {
	var out Metrics
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		s, err := parseSample(l)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d %q: %w", line, l, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSample(l string) (Sample, error) {
	s := Sample{Labels: map[string]string{}}
	i := strings.IndexAny(l, "{ \t")
	if i <= 0 {
		return s, fmt.Errorf("no value")
	}
	s.Name, l = l[:i], l[i:]
	if l[0] == '{' {
		rest, err := parseLabels(l[1:], s.Labels)
		if err != nil {
			return s, err
		}
		l = rest
	}
	f := strings.Fields(l)
	if len(f) < 1 || len(f) > 2 {
		return s, fmt.Errorf("want a value and at most a timestamp")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, fmt.Errorf("value: %w", err)
	}
	s.Value = v
	return s, nil
}

// parseLabels reads name="value" pairs up to the closing brace into m and
// returns what follows it.
func parseLabels(l string, m map[string]string) (string, error) {
	for {
		l = strings.TrimLeft(l, " ,")
		if strings.HasPrefix(l, "}") {
			return l[1:], nil
		}
		eq := strings.IndexByte(l, '=')
		if eq <= 0 || len(l) < eq+2 || l[eq+1] != '"' {
			return "", fmt.Errorf("bad label")
		}
		name := strings.TrimSpace(l[:eq])
		l = l[eq+2:]
		var v strings.Builder
		closed := false
		for i := 0; i < len(l); i++ {
			c := l[i]
			if c == '\\' && i+1 < len(l) {
				i++
				switch l[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(l[i])
				}
				continue
			}
			if c == '"' {
				l, closed = l[i+1:], true
				break
			}
			v.WriteByte(c)
		}
		if !closed {
			return "", fmt.Errorf("unterminated label value")
		}
		m[name] = v.String()
	}
}

// Sum adds the values of every series of the metric name.
func (m Metrics) Sum(name string) float64 {
	var t float64
	for _, s := range m {
		if s.Name == name {
			t += s.Value
		}
	}
	return t
}

// By sums the series of name per value of label.
func (m Metrics) By(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if s.Name == name {
			out[s.Labels[label]] += s.Value
		}
	}
	return out
}

// Drops returns every counter whose name says it counts a loss (dropped,
// lost, evicted, overflow, skipped, gave_up), keyed by series as
// name{label=value,...} with labels in order.
func (m Metrics) Drops() map[string]float64 {
	out := map[string]float64{}
	for _, s := range m {
		if !strings.HasSuffix(s.Name, "_total") || !isDrop(s.Name) {
			continue
		}
		out[s.Key()] += s.Value
	}
	return out
}

func isDrop(name string) bool {
	for _, w := range []string{"dropped", "lost", "evicted", "overflow", "skipped", "gave_up"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// Key is the series as name{a="x",b="y"}, labels sorted.
func (s Sample) Key() string {
	if len(s.Labels) == 0 {
		return s.Name
	}
	keys := make([]string, 0, len(s.Labels))
	for k := range s.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(s.Name + "{")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, s.Labels[k])
	}
	b.WriteByte('}')
	return b.String()
}
