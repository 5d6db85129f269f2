/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kind: pipeline.  Stages run in order; every box boots its own VM, gets
 * the previous stage's output as /workspace/input.json, runs its command
 * and hands on its output (output_file if non-empty, else stdout).  A
 * fan-out runs its boxes on worker threads (at most max_parallel at once)
 * and hands on a JSON array of their outputs in declaration order.
 *
 * Failure policy: a failing box does not stop its fan-out siblings (they
 * finish, so their results and logs are complete); the stage fails, and
 * every later stage is skipped.  A cancel stops everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentbin/agentbin.h"
#include "run/engine.h"
#include "skill/skill.h"
#include "run/quota.h"
#include "util/util.h"

static const char input_path[] = "/workspace/input.json";

/* A name that is safe as one directory component. */
static int dir_name_ok(const char *s)
{
	return s && s[0] && s[0] != '.' && !strchr(s, '/') && strlen(s) <= 200;
}

int vb_run_pipeline_prepare(struct vb_run *r, vb_error *err)
{
	const struct vb_spec_pipeline *pl = &r->spec->pipeline;
	r->vmc = calloc(pl->n_boxes, sizeof(*r->vmc));
	if (!r->vmc)
		return vb_error_set(err, VB_E_RUNTIME, "out of memory");
	r->n_vmc = pl->n_boxes;
	for (size_t i = 0; i < pl->n_boxes; i++) {
		const struct vb_spec_box *b = &pl->boxes[i];
		struct vb_run_vmconf *vc = &r->vmc[i];
		/* every image before any VM boots: one that cannot be had fails
		 * the run here, before any box ran */
		struct vb_run_pull gp = { .policy = vb_run_pull_policy(r, b->vm.guest_image),
					  .progress = r->opts.notices };
		if (vb_run_vm_config_pull(&b->vm, r->opts.accel_set ? &r->opts.accel : NULL, &gp, vc,
					  err) < 0 ||
		    (b->vm.image && vb_run_vm_image(r, i, b->vm.image, err) < 0) ||
		    vb_run_add_extras(r, vc, err) < 0)
			goto fail;
		/* an agent that runs in the VM: its binary, attached read-only */
		int agentbin = b->prompt.s ? vb_run_agent_binary(&b->llm_eff) : -1;
		if (agentbin >= 0 && vb_run_vmconf_add_agent(vc, agentbin, r->opts.notices, err) < 0)
			goto fail;
		for (size_t o = 0; o < b->n_outputs; o++) {
			const char *name = b->outputs[o].name.s;
			if (!dir_name_ok(name)) {
				vb_error_set(err, VB_E_USAGE, "output name '%s' cannot name a directory",
					     name ? name : "");
				goto fail;
			}
			_cleanup_free_ char *dir = vb_strfmt("%s/outputs/%s", r->run_dir, name);
			if (!dir || vb_run_vmconf_add_mount(vc, dir, b->outputs[o].guest.s, 1, err) < 0)
				goto fail_oom;
			/* a known rate, so the quota watcher stops a writer in time */
			vc->mounts_v[vc->n_mounts - 1].write_mib_s = VB_QUOTA_WRITE_MIB_S;
		}
		for (size_t k = 0; k < b->n_inputs; k++) {
			_cleanup_free_ char *dir =
				vb_strfmt("%s/outputs/%s", r->run_dir, b->inputs[k].from.s);
			if (!dir || vb_run_vmconf_add_mount(vc, dir, b->inputs[k].guest.s, 0, err) < 0)
				goto fail_oom;
		}
		/* an agent that runs in the VM: its binary, read-only */
		int bin = b->prompt.s ? vb_run_agent_binary(&b->llm_eff) : -1;
		if (bin >= 0 && vb_run_vmconf_add_agent(vc, bin, r->opts.notices, err) < 0)
			goto fail;
		/* its snapshot found, and what a restore cannot give refused,
		 * with everything it mounts counted (its gateway's forward too) */
		if (vb_run_boot_prepare(r, vc, bin >= 0, err) < 0)
			goto fail;
		vb_run_vmconf_notify(vc, r->opts.notices);
		continue;
	fail_oom:
		if (err && err->kind == VB_E_OK)
			vb_error_set(err, VB_E_RUNTIME, "out of memory");
	fail:
		vb_error_prefix(err, "box '%s'", b->name.s);
		return -1;
	}
	return 0;
}

/* Make the named output directories before any box mounts them. */
static int make_output_dirs(struct vb_run *r, vb_error *err)
{
	const struct vb_spec_pipeline *pl = &r->spec->pipeline;
	for (size_t i = 0; i < pl->n_boxes; i++)
		for (size_t o = 0; o < pl->boxes[i].n_outputs; o++) {
			_cleanup_free_ char *dir =
				vb_strfmt("%s/outputs/%s", r->run_dir, pl->boxes[i].outputs[o].name.s);
			if (!dir)
				return vb_error_set(err, VB_E_RUNTIME, "out of memory");
			if (vb_mkdir_p(dir, 0755, err) < 0)
				return -1;
		}
	return 0;
}

/* Why a box that carries its stdout cannot, or NULL. */
static const char *stdout_overflow(struct vb_run *r, const struct vb_run_unit *u, char *buf,
				   size_t size)
{
	if (u->out_overflow == 2) {
		vb_run_budget_msg(r, buf, size);
		return buf;
	}
	if (u->out_overflow) {
		snprintf(buf, size,
			 "stdout is larger than %zu MiB, the most a box can carry (write it to a "
			 "named output instead)",
			 VB_RUN_MAX_OUTPUT >> 20);
		return buf;
	}
	return NULL;
}

/* Does a later box read (bi)'s stdout (stdin_from)? */
static int stdout_wanted(const struct vb_spec_pipeline *pl, size_t bi)
{
	for (size_t i = 0; i < pl->n_boxes; i++)
		if (pl->boxes[i].run.stdin_index == bi)
			return 1;
	return 0;
}

/* The box's output: output_file if non-empty (a missing file counts as
 * empty), else its stdout, copied from the guest to u->dir/output piece by
 * piece.  Returns 0, 1 when the box fails for it (why in err, kind
 * VB_E_OK), -1 with (err) set on a VoidBox failure. */
static int take_output(struct vb_run *r, struct vb_run_unit *u, size_t bi, vb_sandbox *sb,
		       vb_error *err)
{
	const struct vb_spec_box *b = &r->spec->pipeline.boxes[bi];
	char why[512];
	/* an agent's output_file defaults to /workspace/output.json (SPEC-V1) */
	const char *output_file = b->output_file.s      ? b->output_file.s
				  : b->prompt.s ? "/workspace/output.json"
						: NULL;
	if (output_file) {
		_cleanup_free_ char *part = vb_strfmt("%s/output.part", u->dir);
		_cleanup_free_ char *out = vb_strfmt("%s/output", u->dir);
		if (!part || !out)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0)
			return vb_error_errno(err, errno, "cannot create %s", part);
		uint64_t len = 0;
		int rc = vb_file_read_fd(sb, output_file, VB_RUN_MAX_OUTPUT, fd, &len, err);
		close(fd);
		if (rc < 0 && err->kind == VB_E_NOTFOUND) {
			vb_error_clear(err);
			rc = 0;
			len = 0;
		}
		if (rc != 0 || !len)
			unlink(part);
		if (rc < 0)
			return -1;
		if (rc > 0)
			return vb_error_set(err, VB_E_OK,
					    "%s is larger than %zu MiB, the most a box can carry "
					    "(write it to a named output instead)",
					    output_file, VB_RUN_MAX_OUTPUT >> 20);
		/* a service's output is its output_file: nothing else stands in */
		if (!len && b->agent_mode == VB_SPEC_AGENT_SERVICE)
			return vb_error_set(err, VB_E_OK,
					    "mode service: the agent ended without writing its "
					    "output_file %s",
					    output_file);
		if (len) {
			if (!stdout_wanted(&r->spec->pipeline, bi) && u->out_path) {
				/* nobody reads this stdout: give its budget back */
				if (u->out_fd >= 0) {
					close(u->out_fd);
					u->out_fd = -1;
				}
				unlink(u->out_path);
				vb_run_budget_give(r, u->out_len);
				free(u->out_path);
				u->out_path = NULL;
				u->out_len = 0;
			}
			if (vb_run_budget_take(r, len) < 0) {
				unlink(part);
				vb_run_budget_msg(r, why, sizeof(why));
				return vb_error_set(err, VB_E_OK, "%s", why);
			}
			if (rename(part, out) < 0) {
				int e = errno;
				unlink(part);
				return vb_error_errno(err, e, "cannot keep the output of '%s'", u->name);
			}
			return vb_run_unit_settle(r, u, out, len, err);
		}
	}
	if (stdout_overflow(r, u, why, sizeof(why)))
		return vb_error_set(err, VB_E_OK, "%s", why);
	return vb_run_unit_settle(r, u, NULL, 0, err);
}

/* What a stage gets as /workspace/input.json: the previous stage's output
 * file, or --input. */
struct carry {
	const char *path;      /* NULL: (mem, len) */
	const uint8_t *mem;
	size_t len;
	int has;
};

static int give_input(vb_sandbox *sb, const struct carry *in, vb_error *err)
{
	if (!in->path)
		return vb_file_write(sb, input_path, in->mem ? in->mem : (const uint8_t *)"", in->len,
				     0644, 0, err);
	int fd = open(in->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return vb_error_errno(err, errno, "cannot open %s", in->path);
	int rc = vb_file_write_fd(sb, input_path, fd, 0644, 0, err);
	close(fd);
	return rc;
}

static const char **make_argv(const struct vb_spec_run *run)
{
	const char **argv = calloc(run->args.n + 2, sizeof(*argv));
	if (!argv)
		return NULL;
	argv[0] = run->program.s;
	for (size_t i = 0; i < run->args.n; i++)
		argv[i + 1] = run->args.v[i].s ? run->args.v[i].s : "";
	return argv;
}

/* An agent box, in its booted VM: the input, the builtin agent, its
 * output (output_file if non-empty, else its final answer). */
static void run_agent_box(struct vb_run *r, size_t bi, struct vb_run_unit *u,
			  const struct carry *in, vb_sandbox *sb, vb_quota *q, unsigned timeout_ms,
			  struct vb_run_agent_link *link)
{
	const struct vb_spec_box *b = &r->spec->pipeline.boxes[bi];
	vb_error err = { 0 };
	struct vb_run_agent_box a = { .prompt = b->prompt.s, .skills = &r->skills[bi],
				      .llm = &b->llm_eff, .timeout_ms = timeout_ms,
				      .max_turns = b->max_turns.set ? (unsigned)b->max_turns.v : 0,
				      .in_path = in->path, .in_mem = in->mem, .in_len = in->len,
				      .in_has = in->has, .env = r->vmc[bi].env, .link = link,
				      .mode = b->agent_mode };
	int rc;
	if (in->has && give_input(sb, in, &err) < 0) {
		vb_run_unit_fail_err(r, u, sb, &err);
	} else if ((rc = vb_run_agent(r, u, sb, &a, &err)) != 0) {
		if (vb_quota_fail_unit(q, r, u, sb, 1))
			return;
		if (rc > 0)
			vb_run_unit_fail(r, u, sb, VB_E_OK, "%s", err.msg);
		else
			vb_run_unit_fail_err(r, u, sb, &err);
	} else if ((rc = take_output(r, u, bi, sb, &err)) != 0) {
		if (vb_quota_fail_unit(q, r, u, sb, 1))
			return;
		if (err.kind == VB_E_OK)
			vb_run_unit_fail(r, u, sb, VB_E_OK, "%s", err.msg);
		else
			vb_run_unit_fail_err(r, u, sb, &err);
	} else if (!vb_quota_fail_unit(q, r, u, sb, 1)) {
		vb_run_unit_ok(r, u, sb);
	}
}

/* Boot, feed, run, collect, tear down: one box, on the calling thread
 * (which therefore owns the VM). */
static void run_box(struct vb_run *r, size_t bi, struct vb_run_unit *u, const struct carry *in)
{
	const struct vb_spec_box *b = &r->spec->pipeline.boxes[bi];
	struct vb_run_vmconf *vc = &r->vmc[bi];
	if (vb_run_cancelled(r)) {
		vb_run_unit_skip(r, u, "the run was cancelled");
		return;
	}
	vb_run_unit_start(r, u, NULL);
	vb_error err = { 0 };
	if (vb_run_unit_files(r, u, &err) < 0) {
		vb_run_unit_fail(r, u, NULL, VB_E_RUNTIME, "%s", err.msg);
		return;
	}
	struct vb_sandbox_config cfg = vc->cfg;
	cfg.name = b->name.s;
	cfg.cancel_fd = r->opts.cancel_fd;
	/* its image was had before any VM booted (cfg's root points into it) */
	vb_run_unit_image(r, u, bi);
	/* an agent in the VM reaches its gateway through a loopback forward;
	 * (link) outlives the VM (vb_sandbox_free waits for the forwards) */
	struct vb_run_agent_link link = { .mu = PTHREAD_MUTEX_INITIALIZER };
	struct vb_forward fw = { .guest_port = vb_run_agent_binary(&b->llm_eff) == VB_AGENTBIN_CODEX
						       ? VB_RUN_CODEX_GATEWAY_PORT
						       : VB_RUN_GATEWAY_PORT,
				 .accept = vb_run_agent_accept, .opaque = &link };
	if (b->prompt.s && vb_run_agent_binary(&b->llm_eff) >= 0) {
		cfg.forwards = &fw;
		cfg.n_forwards = 1;
	}
	struct vb_run_net net;
	vb_run_net_prepare(&net, r, u->name, u->dir, &cfg);
	struct vb_run_boot boot;
	vb_sandbox *sb = vb_run_boot(r, vc, &cfg, &boot, &err);
	if (!sb) {
		if (err.kind == VB_E_CANCELLED)
			vb_run_unit_fail(r, u, NULL, VB_E_CANCELLED, "cancelled while booting");
		else if (vc->boot == VB_RUN_BOOT_SNAPSHOT)
			vb_run_unit_fail(r, u, NULL, VB_E_RUNTIME, "VM not restored: %s", err.msg);
		else
			vb_run_unit_fail(r, u, NULL, VB_E_RUNTIME, "VM failed to boot: %s", err.msg);
		return;
	}
	vb_run_unit_booted(r, u, sb, &boot);
	vb_run_skills_oci_booted(r, u, &r->skills[bi]);
	vb_run_net_booted(&net, sb, &cfg);
	vb_quota *q = NULL;
	if (vb_quota_start(r, bi, sb, &q, &err) < 0) {
		vb_run_unit_fail_err(r, u, sb, &err);
		vb_run_net_summary(&net, sb, &cfg);
		vb_sandbox_free(sb);
		return;
	}

	const char **argv = make_argv(&b->run);
	int stdin_fd = -1;
	if (b->run.stdin_index != SIZE_MAX && r->box_unit[b->run.stdin_index] != SIZE_MAX) {
		/* the producer ran in an earlier stage (checked by the spec loader) */
		const struct vb_run_unit *p = &r->units[r->box_unit[b->run.stdin_index]];
		stdin_fd = p->out_path ? open(p->out_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
				       : open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	unsigned timeout_ms = vc->timeout_ms;
	if (b->timeout_secs.set && b->timeout_secs.v > 0)
		timeout_ms = b->timeout_secs.v > UINT32_MAX / 1000 ? UINT32_MAX
								   : (unsigned)b->timeout_secs.v * 1000;
	struct vb_exec_params p = { .argv = argv, .env = vc->env, .timeout_ms = timeout_ms };
	int code = -1, rc;
	if (b->prompt.s) {
		run_agent_box(r, bi, u, in, sb, q, b->timeout_secs.set ? timeout_ms : 0, &link);
	} else if (!argv) {
		vb_run_unit_fail(r, u, sb, VB_E_RUNTIME, "out of memory");
	} else if (b->run.stdin_index != SIZE_MAX && r->box_unit[b->run.stdin_index] != SIZE_MAX &&
		   stdin_fd < 0) {
		vb_run_unit_fail(r, u, sb, VB_E_RUNTIME, "cannot open the stdout it reads: %s",
				 strerror(errno));
	} else if (in->has && give_input(sb, in, &err) < 0) {
		vb_run_unit_fail_err(r, u, sb, &err);
	} else if (vb_run_exec(r, u, sb, &p, stdin_fd, &code, &err) < 0) {
		if (!vb_quota_fail_unit(q, r, u, sb, 1)) /* the quota killed the VM? */
			vb_run_unit_fail_err(r, u, sb, &err);
	} else if (vb_quota_fail_unit(q, r, u, sb, code != 0)) {
		/* said: the quota is the cause, whatever the program did next
		 * (a program that failed needs its VM no more: the last word) */
	} else if (code == VB_RUN_TIMED_OUT) {
		u->exit_code = 124;
		vb_run_unit_settle(r, u, NULL, 0, &err);
		vb_run_unit_fail(r, u, sb, VB_E_OK, "timed out after %u s (exit code 124)",
				 timeout_ms / 1000);
	} else if ((u->exit_code = code) != 0) {
		vb_run_unit_settle(r, u, NULL, 0, &err);
		vb_run_unit_fail(r, u, sb, VB_E_OK, "exit code %d", code);
	} else if ((rc = take_output(r, u, bi, sb, &err)) != 0) {
		if (vb_quota_fail_unit(q, r, u, sb, 1)) {
			/* said: the quota killed the VM while its output was read */
		} else if (err.kind == VB_E_OK) {
			vb_run_unit_fail(r, u, sb, VB_E_OK, "%s", err.msg);
		} else {
			vb_run_unit_fail_err(r, u, sb, &err);
		}
	} else if (vb_quota_fail_unit(q, r, u, sb, 1)) {
		/* said; checked last, with the VM frozen, so that nothing it
		 * writes from now on counts */
	} else {
		vb_run_unit_ok(r, u, sb);
	}
	if (u->out_fd >= 0) {
		close(u->out_fd);
		u->out_fd = -1;
	}
	if (stdin_fd >= 0)
		close(stdin_fd);
	free(argv);
	vb_quota_free(q);
	vb_run_net_summary(&net, sb, &cfg);
	vb_sandbox_free(sb);
}

struct fan {
	struct vb_run *r;
	const struct vb_spec_stage *st;
	struct vb_run_unit *units; /* the stage's, one per box */
	const struct carry *in;
	size_t next;
	pthread_mutex_t mu;
};

static void *fan_worker(void *arg)
{
	struct fan *f = arg;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		size_t i = f->next++;
		pthread_mutex_unlock(&f->mu);
		if (i >= f->st->names.n)
			return NULL;
		run_box(f->r, f->st->box_index[i], &f->units[i], f->in);
	}
}

static void run_stage(struct vb_run *r, const struct vb_spec_stage *st, struct vb_run_unit *units,
		      const struct carry *in)
{
	struct fan f = { .r = r, .st = st, .units = units, .in = in };
	size_t n = st->names.n, nw = r->opts.max_parallel;
	if (nw > n)
		nw = n;
	pthread_mutex_init(&f.mu, NULL);
	pthread_t tid[64];
	size_t started = 0;
	if (nw > 64)
		nw = 64;
	/* One box needs no thread; a fan-out gets its workers (if none can be
	 * created, the calling thread works through the boxes alone). */
	for (size_t w = 0; n > 1 && w < nw; w++) {
		if (pthread_create(&tid[started], NULL, fan_worker, &f) != 0)
			break;
		started++;
	}
	if (!started)
		fan_worker(&f);
	for (size_t w = 0; w < started; w++)
		pthread_join(tid[w], NULL);
	pthread_mutex_destroy(&f.mu);
}

/* After the stage's threads are joined: its first failed box in
 * declaration order, else its first box that did not succeed. */
static const struct vb_run_unit *first_failure(const struct vb_run_unit *units, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (units[i].state == VB_UNIT_FAILED)
			return &units[i];
	for (size_t i = 0; i < n; i++)
		if (units[i].state != VB_UNIT_OK)
			return &units[i];
	return NULL;
}

int vb_run_pipeline(struct vb_run *r, vb_error *err)
{
	const struct vb_spec_pipeline *pl = &r->spec->pipeline;
	if (make_output_dirs(r, err) < 0)
		return -1;
	/* (in) is what the next stage gets; the first gets --input.  A
	 * fan-out's array is a file of the run's own (carry_file), removed
	 * once the next stage has it. */
	struct carry in = { .mem = (const uint8_t *)r->opts.input, .len = r->opts.input_len,
			    .has = r->opts.input != NULL };
	_cleanup_free_ char *carry_file = NULL;
	uint64_t carry_len = 0;
	char why[300] = "";
	size_t s = 0, base = 0; /* base: the stage's first unit */
	for (; s < pl->n_stages; base += pl->stages[s].names.n, s++) {
		const struct vb_spec_stage *st = &pl->stages[s];
		struct vb_run_unit *units = &r->units[base];
		size_t n = st->names.n;
		run_stage(r, st, units, &in);
		if (carry_file) {
			unlink(carry_file);
			free(carry_file);
			carry_file = NULL;
		}
		for (size_t i = 0; i < n; i++)
			r->box_unit[st->box_index[i]] = base + i;
		const struct vb_run_unit *bad = first_failure(units, n);
		if (bad) {
			if (bad->fail_kind == VB_E_CANCELLED || bad->state == VB_UNIT_SKIPPED ||
			    vb_run_cancelled(r))
				vb_run_set_error(r, VB_E_CANCELLED, "cancelled");
			else
				vb_run_set_error(r, bad->fail_kind, "box '%s' failed: %s", bad->name,
						 bad->error ? bad->error : "unknown error");
			snprintf(why, sizeof(why), "'%s' failed", bad->name);
			base += n;
			s++;
			break;
		}
		if (st->type == VB_SPEC_STAGE_FAN_OUT) {
			_cleanup_free_ char *dir = vb_strfmt("%s/carries", r->work_dir);
			carry_file = vb_strfmt("%s/carries/stage-%zu.json", r->work_dir, s + 1);
			if (!dir || !carry_file)
				return vb_error_set(err, VB_E_RUNTIME, "out of memory");
			if (vb_mkdir_p(dir, 0700, err) < 0)
				return -1;
			int rc = vb_run_fan_carry(r, units, n, carry_file, &carry_len, err);
			if (rc < 0)
				return -1;
			if (rc > 0) {
				free(carry_file);
				carry_file = NULL;
				vb_run_set_error(r, VB_E_OK, "the fan-out of '%s' and %zu more: %s",
						 units[0].name, n - 1, err->msg);
				vb_error_clear(err);
				snprintf(why, sizeof(why), "the fan-out of '%s' carried too much",
					 units[0].name);
				base += n;
				s++;
				break;
			}
			in = (struct carry){ .path = carry_file, .has = 1 };
		} else {
			in = (struct carry){ .path = units[0].output_path, .has = 1 };
			carry_len = units[0].output_len;
		}
	}
	if (!r->error) {
		r->final_path = in.path ? strdup(in.path) : NULL;
		r->final_len = in.path ? carry_len : 0;
		if (in.path && !r->final_path)
			return vb_error_set(err, VB_E_RUNTIME, "out of memory");
		/* the final carry file stays: the result refers to it */
		if (carry_file) {
			free(carry_file);
			carry_file = NULL;
		}
		return 0;
	}
	if (carry_file)
		unlink(carry_file);
	/* The cause is said once, where it happened: a skip names the box. */
	for (size_t k = base; k < r->n_units; k++)
		vb_run_unit_skip(r, &r->units[k],
				 r->error_kind == VB_E_CANCELLED ? "the run was cancelled" : why);
	return 0;
}
