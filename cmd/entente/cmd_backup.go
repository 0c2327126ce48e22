package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/store"
)

func init() {
	register(&command{
		name: "backup",
		summary: "back up a running node's store into a file (mode 0600), through its API with the operator's token\n\n" +
			"The node goes on while the backup is taken; the file is one snapshot of it. See docs/operating.md, \"Backup and restore\".",
		usage: "backup --home DIR --out FILE [--api HOST:PORT] [--token-file FILE]",
		run:   runBackup,
	})
	register(&command{
		name: "restore",
		summary: "restore a backup into a home that has no data directory yet\n\n" +
			"The restored node signs no checkpoint until its peers say which of its checkpoints they hold. See docs/operating.md, \"Backup and restore\".",
		usage: "restore --home DIR --in FILE",
		run:   runRestore,
	})
}

func runBackup(env *cliEnv, args []string) error {
	c := findCommand("backup")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	out := flags.String("out", "", "the file to write the backup to (replaced atomically if it exists)")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usagef("unexpected argument %q", rest[0])
	case *out == "":
		return usagef("--out is required")
	case af.api == "" && env.homeDir(af.home) == "":
		return usagef("--home is required (or set ENTENTE_HOME)")
	}
	cl, err := af.client(env, true)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(env.ctx) // Ctrl-C leaves FILE as it was
	defer stop()
	start := time.Now()
	resp, err := cl.stream(ctx, "/v1/backup", api.MediaBackup)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	prog := newProgress(env.stderr, start)
	var info store.BackupInfo
	err = writeFileStreaming(*out, 0o600, func(w io.Writer) error {
		// The file is checked as it is written: a backup cut short (the
		// node stopped, the connection broke) never replaces FILE.
		var cerr error
		info, cerr = store.CheckBackup(io.TeeReader(resp.Body, io.MultiWriter(w, prog)))
		return cerr
	})
	prog.done()
	if errors.Is(err, store.ErrBackupFormat) {
		return withHint(fmt.Errorf("the backup did not arrive whole: %w", err), "run it again; the node's log says why it stopped")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "backup of %d records (log size %d, root %s), last signed checkpoint %d, %d keys: %d bytes in %s, written to %s\n",
		info.Tree.Size, info.Tree.Size, info.Tree.Root, info.CheckpointSize, info.Keys, info.Bytes,
		time.Since(start).Round(time.Millisecond), *out)
	return nil
}

func runRestore(env *cliEnv, args []string) error {
	c := findCommand("restore")
	flags := newFlags(env, c)
	home := flags.String("home", "", "the node's home directory (default $ENTENTE_HOME); it must have no data directory")
	in := flags.String("in", "", "the backup file (entente backup)")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	*home = env.homeDir(*home)
	switch {
	case len(rest) > 0:
		return usagef("unexpected argument %q", rest[0])
	case *home == "":
		return usagef("--home is required (or set ENTENTE_HOME)")
	case *in == "":
		return usagef("--in is required")
	}
	nc, err := config.Load(*home)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return withHint(err, "set the home up first with 'entente init --home "+*home+" --federation FILE --jurisdiction CODE [--key FILE]'")
		}
		return err
	}
	data := nc.DataDir()
	if _, err := os.Lstat(data); err == nil {
		return withHint(fmt.Errorf("%s already has a data directory, %s; restore never replaces one", *home, data),
			"stop the node and move "+data+" aside (keep it), or restore into a new home; see docs/operating.md, \"Backup and restore\"")
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	start := time.Now()
	info, err := store.Restore(data, f)
	switch {
	case errors.Is(err, store.ErrBackupFormat):
		return withHint(fmt.Errorf("%s: %w", *in, err), "nothing was written; take a new backup with 'entente backup'")
	case err != nil:
		return err
	}
	fmt.Fprintf(env.stdout, "restored %d records (log size %d, root %s), last signed checkpoint %d, %d keys, from a backup taken %s, into %s in %s\n",
		info.Tree.Size, info.Tree.Size, info.Tree.Root, info.CheckpointSize, info.Keys,
		info.TakenAt.UTC().Format(time.RFC3339), data, time.Since(start).Round(time.Millisecond))
	fmt.Fprintln(env.stdout, "the node signs no checkpoint until its peers say which of its checkpoints they hold and its log has that tree (entente status shows it)")
	if _, err := os.Stat(nc.AccessPath()); errors.Is(err, fs.ErrNotExist) {
		// The backup is the store; the home's files are not in it.
		fmt.Fprintf(env.stdout, "API callers: a backup does not hold their tokens; copy %s from the old home into %s to keep them, or grant them again (entente access grant)\n",
			config.AccessFile, *home)
	}
	return nil
}

// writeFileStreaming writes what fill writes to path so that path holds
// either its old content or all of it: a temporary file beside it (mode
// perm from the start), synced, renamed over path, the directory synced.
// On error (fill's too) the temporary file is removed and path left be.
func writeFileStreaming(path string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// progress shows the bytes received on a terminal, on one line, at most
// five times a second; elsewhere it shows nothing.
type progress struct {
	w     io.Writer // nil: not a terminal
	start time.Time
	last  time.Time
	n     int64
}

func newProgress(w io.Writer, start time.Time) *progress {
	p := &progress{start: start}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.w = w
		}
	}
	return p
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if p.w != nil && time.Since(p.last) > 200*time.Millisecond {
		p.last = time.Now()
		secs := time.Since(p.start).Seconds()
		fmt.Fprintf(p.w, "\rreceived %.1f MiB (%.1f MiB/s)   ", float64(p.n)/(1<<20), float64(p.n)/(1<<20)/max(secs, 0.001))
	}
	return len(b), nil
}

func (p *progress) done() {
	if p.w != nil && !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
