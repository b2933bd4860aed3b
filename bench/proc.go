package bench

import (
	"fmt"
	"strconv"
	"strings"
)

// StatCPUTicks returns utime + stime (clock ticks) from the text of
// /proc/<pid>/stat. The command name in parentheses may hold spaces and
// parentheses, so fields are counted from the last ')'.
func StatCPUTicks(stat string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc stat: %d fields after the name, want 13 or more", len(f))
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proc stat: utime %q stime %q", f[11], f[12])
	}
	return u + s, nil
}

// StatusBytes returns a "kB" line of /proc/<pid>/status (VmHWM, VmRSS) in
// bytes.
func StatusBytes(status, field string) (int64, error) {
	for _, l := range strings.Split(status, "\n") {
		v, ok := strings.CutPrefix(l, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("proc status %s: %q", field, l)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("proc status %s: %w", field, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("proc status: no %s", field)
}
