package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftrace/weft/internal/jaeger"
)

// The compose test brings deploy/docker-compose up on Debian's Docker
// Engine (a private dockerd, as the Docker test starts) with Compose v2
// (`make compose`, cached). There is no registry here, so the images the
// compose file names and a user pulls are stood in for by local ones,
// tagged with the official names so compose uses them without a pull:
//
//   - jaegertracing/jaeger:2.13.0: the pinned Jaeger binary (v1.76.0 is
//     v2.13.0) FROM scratch, laid out and configured as the official image
//     (/cmd/jaeger/jaeger-linux, JAEGER_LISTEN_HOST=0.0.0.0, user 10001);
//   - postgres:15 and python:3.11-slim: Debian bookworm minbase with
//     Debian's postgresql-15 and python3 (`make compose-images`), postgres
//     with an entrypoint that honours POSTGRES_* and initdb.d as the
//     official one does (testdata/postgres-entrypoint.sh).
//
// weft and the demo's images are built by compose from the repository's
// Dockerfile with BINARIES=prebuilt: static binaries built here, as `make
// compose-binaries` does, since no golang image can be pulled either.

// composeVersion is the Compose release `make compose` builds.
const composeVersion = "v2.40.3"

// cachePath is $env, else name in the cache directory (WEFT_CACHE or
// ~/.cache/weft); it must exist, or the test fails saying what builds it.
func cachePath(t *testing.T, env, name, maker string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		cache := os.Getenv("WEFT_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				t.Fatal(err)
			}
			cache = filepath.Join(home, ".cache", "weft")
		}
		p = filepath.Join(cache, name)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found (%v): run %s or set %s", p, err, maker, env)
	}
	return p
}

// composeStack is a compose project on a private engine.
type composeStack struct {
	e       *dockerEngine
	bin     string   // the compose binary, run standalone
	file    string   // compose.yaml
	project string   // -p
	env     []string // what the compose file reads
}

func (c *composeStack) run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"-f", c.file, "-p", c.project}, args...)...)
	cmd.Env = c.e.env(c.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker compose %s: %v\n%s", strings.Join(args, " "), err, tail2(string(out), 40))
	}
	return string(out), nil
}

// TestCompose: the compose stack (weft, Jaeger, PostgreSQL and the demo
// shop in containers) comes up on a real engine and gives what `make demo`
// gives: every route's traces whole in Jaeger, across the containers, each
// span's service the name of the container it came from (container.name
// and container.id on its resource, from the engine's API through the
// socket weft is given), failed checkouts Error up to the loadgen, Jaeger's
// dependency graph and weft's /map.json with the demo's graph. Then
// `compose down -v` removes it all.
func TestCompose(t *testing.T) {
	s := needSuite(t)
	began := time.Now()
	composeBin := cachePath(t, "WEFT_COMPOSE_BIN", "docker-compose-"+composeVersion, "make compose")
	rootfs := cachePath(t, "WEFT_COMPOSE_IMAGES", "compose-images-bookworm", "make compose-images")
	jaegerBin, err := jaegerBinary()
	if err != nil {
		t.Fatal(err)
	}

	// The static binaries the Dockerfile's prebuilt stage copies. Not
	// stripped (-ldflags=-s): weft finds the Go hand-off functions it
	// probes in the symbol table, and without them a Go program's calls
	// under concurrency are not nested (measured: 10-30 % of the traces
	// broken).
	build := exec.Command("go", "build", "-o", "bin/compose/",
		"./cmd/weft", "./demo/frontend", "./demo/catalog", "./demo/payments", "./demo/loadgen")
	build.Dir = s.root
	build.Env = childEnv("CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build (make compose-binaries): %v\n%s", err, out)
	}
	built := time.Now()

	// Published ports go through docker-proxy: the engine sets no iptables
	// rules on this shared machine. Compose's network comes from a pool of
	// its own, away from 172.17.0.0/16, which an engine run with iptables
	// may have left a MASQUERADE rule for: with br_netfilter that rewrites
	// the source of calls between containers, and then no client span finds
	// its server span (their tuples differ).
	e := startDocker(t, "--userland-proxy=true", "--default-address-pool", "base=10.213.0.0/16,size=24")
	standIns(t, e, rootfs, jaegerBin)
	imported := time.Now()

	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	c := &composeStack{
		e: e, bin: composeBin, file: filepath.Join(s.root, "deploy", "docker-compose", "compose.yaml"),
		project: "weft-e2e-" + token(6),
		env: []string{
			"COMPOSE_BAKE=false", // build with the engine's BuildKit, no buildx plugin
			"WEFT_BINARIES=prebuilt",
			"DOCKER_SOCKET=" + e.socket,
			fmt.Sprintf("JAEGER_UI_PORT=127.0.0.1:%d", ports[0]),
			fmt.Sprintf("WEFT_PORT=127.0.0.1:%d", ports[1]),
			fmt.Sprintf("FRONTEND_PORT=127.0.0.1:%d", ports[2]),
			"CHECKOUT_FAIL_RATE=0.3", // a failed checkout within the test
			"LOADGEN_RATE=10",
		},
	}
	if _, err := c.run(5*time.Minute, "build"); err != nil {
		t.Fatal(err)
	}
	builtImages := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.run(time.Minute, "ps", "-a")
			t.Logf("compose ps:\n%s", out)
			for _, svc := range []string{"weft", "jaeger", "postgres", "catalog", "checkout", "payments", "frontend", "loadgen"} {
				out, _ := c.run(time.Minute, "logs", "--no-color", "--tail", "15", svc)
				t.Logf("compose logs %s:\n%s", svc, out)
			}
		}
		downAt := time.Now()
		if _, err := c.run(2*time.Minute, "down", "-v", "--timeout", "10"); err != nil {
			t.Errorf("compose down: %v", err)
		} else if left, _ := e.try("ps", "-aq"); strings.TrimSpace(left) != "" {
			t.Errorf("containers left after compose down: %s", left)
		}
		t.Logf("compose down in %v", time.Since(downAt).Round(time.Millisecond))
	})
	if _, err := c.run(5*time.Minute, "up", "-d"); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	t.Logf("go build %v, engine and stand-in images %v, compose build %v, compose up %v",
		built.Sub(began).Round(time.Millisecond), imported.Sub(built).Round(time.Millisecond),
		builtImages.Sub(imported).Round(time.Millisecond), up.Sub(builtImages).Round(time.Millisecond))

	svc := func(base string) string { return c.project + "-" + base + "-1" }
	jc := newJaegerClient(fmt.Sprintf("http://127.0.0.1:%d", ports[0]))
	// weft asks the engine for a container's name in the background: the
	// first exchanges of each container may leave under its executable's
	// name. Traces are graded from when every container's name is known.
	err = poll(60*time.Second, time.Second, nil, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		have, err := jc.Services(ctx)
		if err != nil {
			return err
		}
		for _, b := range []string{"loadgen", "frontend", "catalog", "checkout", "payments", "postgres"} {
			if !slices.Contains(have, svc(b)) {
				return fmt.Errorf("no spans of %s yet (services: %v)", svc(b), have)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("compose demo: %v", err)
	}
	named := time.Now()
	t.Logf("spans of every container, under its name, %v after compose up", named.Sub(up).Round(time.Millisecond))
	requireWholeDemoTraces(t, "compose demo", 90*time.Second, nil, jc, svc, named, time.Second)
	t.Logf("whole traces of every route %v after compose up", time.Since(up).Round(time.Second))
	checkContainerResources(t, c, jc, svc)
	checkDemoDependencies(t, jc, svc, nil)
	// The frontend's DNS queries go to Docker's embedded server, 127.0.0.11
	// in every container's network namespace (answered by dockerd, outside
	// them): an external node on the map.
	checkDemoMap(t, fmt.Sprintf("http://127.0.0.1:%d", ports[1]), svc, "127.0.0.11", "external")
}

// checkContainerResources requires every span of the demo's services in
// the loadgen's traces to carry its container's name (its service.name
// too) and id, as the engine reports them.
func checkContainerResources(t *testing.T, c *composeStack, jc *jaegerClient, svc demoNames) {
	t.Helper()
	ids := map[string]string{} // container name -> id
	bases := []string{"loadgen", "frontend", "catalog", "checkout", "payments", "postgres"}
	for _, b := range bases {
		id := strings.TrimSpace(c.e.docker(t, "inspect", "--format", "{{.Id}}", svc(b)))
		if !containerIDRe.MatchString(id) {
			t.Fatalf("docker inspect %s: id %q", svc(b), id)
		}
		ids[svc(b)] = id
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	spans, err := jc.Spans(ctx, svc("loadgen"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	bad := 0
	for _, sp := range spans {
		id, ours := ids[sp.Service]
		if !ours {
			continue
		}
		seen[sp.Service]++
		name, _ := sp.Resource["container.name"].V.(string)
		gotID, _ := sp.Resource["container.id"].V.(string)
		if name != sp.Service || gotID != id {
			if bad++; bad <= 5 {
				t.Errorf("span %s of %s: container.name %q, container.id %q; want %q, %s", sp.Name, sp.Service, name, gotID, sp.Service, id)
			}
		}
	}
	for _, b := range bases {
		if seen[svc(b)] == 0 {
			t.Errorf("no span of %s in the loadgen's traces", svc(b))
		}
	}
	t.Logf("container.name and container.id on %d spans of %d containers (%d wrong)", len(spans), len(seen), bad)
}

var soRe = regexp.MustCompile(`(/\S+\.so[.0-9]*)`)

// standIns makes the images the compose file names and a registry would
// give: postgres:15 and python:3.11-slim from the debootstrap root
// filesystems in rootfs, jaegertracing/jaeger:2.13.0 from the Jaeger binary
// with the shared libraries it links (ldd: libc and the loader).
func standIns(t *testing.T, e *dockerEngine, rootfs, jaegerBin string) {
	t.Helper()
	e.docker(t, "import", "-c", `CMD ["python3"]`, filepath.Join(rootfs, "python.tar"), "python:3.11-slim")
	e.docker(t, "import", filepath.Join(rootfs, "postgres.tar"), "weft-e2e/postgres-rootfs:bookworm")
	pg := t.TempDir()
	entry, err := os.ReadFile("testdata/postgres-entrypoint.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pg, "docker-entrypoint.sh"), entry, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, pg, "Dockerfile", []byte(`FROM weft-e2e/postgres-rootfs:bookworm
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
`))
	e.docker(t, "build", "-q", "-t", "postgres:15", pg)

	jdir := t.TempDir()
	if err := os.Link(jaegerBin, filepath.Join(jdir, "jaeger-linux")); err != nil {
		copyFile(t, jaegerBin, filepath.Join(jdir, "jaeger-linux"))
	}
	var libs []string
	if out, err := exec.Command("ldd", jaegerBin).CombinedOutput(); err == nil {
		for _, m := range soRe.FindAllString(string(out), -1) {
			dst := filepath.Join(jdir, "libs", m)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			copyFile(t, m, dst)
			libs = append(libs, m)
		}
	} // else static ("not a dynamic executable")
	dockerfile := "FROM scratch\n"
	if len(libs) > 0 {
		dockerfile += "COPY libs/ /\n"
	}
	dockerfile += fmt.Sprintf(`COPY jaeger-linux /cmd/jaeger/jaeger-linux
ENV JAEGER_LISTEN_HOST=0.0.0.0
VOLUME ["/tmp"]
USER 10001
ENTRYPOINT ["/cmd/jaeger/jaeger-linux"]
LABEL org.opencontainers.image.version=%s
`, jaeger.Version)
	writeFile(t, jdir, "Dockerfile", []byte(dockerfile))
	e.docker(t, "build", "-q", "-t", "jaegertracing/jaeger:2.13.0", jdir)
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
