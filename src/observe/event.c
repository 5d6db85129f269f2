/* SPDX-License-Identifier: Apache-2.0 */
/* Event names and the JSON shape of one events.jsonl line. */
#include "observe/observe_int.h"

#include "voidbox/events.h"

const char *vb_event_name(enum vb_event_type type)
{
	switch (type) {
	case VB_EV_RUN_STARTED: return "run.started";
	case VB_EV_STAGE_QUEUED: return "stage.queued";
	case VB_EV_STAGE_STARTED: return "stage.started";
	case VB_EV_VM_BOOTED: return "vm.booted";
	case VB_EV_LOG_CHUNK: return "log.chunk";
	case VB_EV_STAGE_COMPLETED: return "stage.completed";
	case VB_EV_STAGE_FAILED: return "stage.failed";
	case VB_EV_STAGE_SKIPPED: return "stage.skipped";
	case VB_EV_RUN_FINISHED: return "run.finished";
	case VB_EV_RUN_CANCELLED: return "run.cancelled";
	case VB_EV_LLM_REQUEST: return "llm.request";
	case VB_EV_AGENT_TOOL: return "agent.tool";
	case VB_EV_AGENT_MESSAGE: return "agent.message";
	case VB_EV_AGENT_RESULT: return "agent.result";
	case VB_EV_NET_DENIED: return "net.denied";
	case VB_EV_NET_PUBLISHED: return "net.published";
	case VB_EV_NET_SUMMARY: return "net.summary";
	case VB_EV_SKILL_PROVISIONED: return "skill.provisioned";
	}
	return NULL;
}

static int set(json_t *o, const char *key, json_t *v)
{
	/* json_object_set_new frees (v) on failure and fails on NULL */
	return json_object_set_new(o, key, v);
}

static int set_str(json_t *o, const char *key, const char *s)
{
	return set(o, key, vb_obs_jstr(s, VB_REC_STR_MAX));
}

json_t *vb_obs_event_json(const struct vb_event *ev, const char *run_id, int64_t time_ms)
{
	const char *name = vb_event_name(ev->type);
	if (!name)
		return NULL;
	char when[40];
	vb_obs_rfc3339(time_ms, 1, when, sizeof(when));
	json_t *o = json_object();
	if (!o)
		return NULL;
	int rc = 0;
	rc |= set(o, "event", json_string(name));
	rc |= set(o, "time", json_string(when));
	rc |= set(o, "time_ms", json_integer(time_ms));
	rc |= set_str(o, "run_id", run_id);

	int stage_event = ev->type != VB_EV_RUN_STARTED && ev->type != VB_EV_RUN_FINISHED &&
			  ev->type != VB_EV_RUN_CANCELLED;
	if (stage_event) {
		rc |= set_str(o, "stage", ev->stage);
		/* where the stage runs, whenever the engine knows it */
		if (ev->type != VB_EV_VM_BOOTED) {
			if (ev->vm_id)
				rc |= set_str(o, "vm_id", ev->vm_id);
			if (ev->accel)
				rc |= set_str(o, "accel", ev->accel);
			if (ev->isolation)
				rc |= set_str(o, "isolation", ev->isolation);
		}
	}
	switch (ev->type) {
	case VB_EV_RUN_STARTED:
		rc |= set_str(o, "name", ev->name);
		rc |= set_str(o, "kind", ev->kind);
		break;
	case VB_EV_STAGE_QUEUED:
	case VB_EV_STAGE_STARTED:
		break;
	case VB_EV_VM_BOOTED:
		rc |= set_str(o, "vm_id", ev->vm_id);
		rc |= set_str(o, "accel", ev->accel);
		rc |= set_str(o, "isolation", ev->isolation);
		rc |= set_str(o, "kernel", ev->kernel);
		rc |= set_str(o, "boot_id", ev->boot_id);
		rc |= set(o, "boot_ms", json_integer(ev->boot_ms));
		if (ev->accel_reason && ev->accel_reason[0])
			rc |= set_str(o, "accel_reason", ev->accel_reason);
		if (ev->image) {
			rc |= set_str(o, "image", ev->image);
			rc |= set_str(o, "image_digest", ev->image_digest);
		}
		/* how it started: restored (from which snapshot) or cold */
		rc |= set(o, "boot", json_string(ev->snapshot ? "restored" : "cold"));
		if (ev->snapshot) {
			rc |= set_str(o, "snapshot", ev->snapshot);
			rc |= set(o, "warm", json_boolean(ev->warm));
		}
		if (ev->boot_notice)
			rc |= set_str(o, "boot_notice", ev->boot_notice);
		break;
	case VB_EV_LOG_CHUNK:
		rc |= set_str(o, "stream", ev->stream);
		rc |= set(o, "len", json_integer(ev->data ? (json_int_t)ev->len : 0));
		break;
	case VB_EV_STAGE_COMPLETED:
		rc |= set(o, "exit_code", json_integer(ev->exit_code));
		rc |= set(o, "duration_ms", json_integer(ev->duration_ms));
		rc |= set(o, "output_bytes", json_integer((json_int_t)ev->output_size));
		break;
	case VB_EV_STAGE_FAILED:
		rc |= set(o, "exit_code", json_integer(ev->exit_code));
		rc |= set(o, "duration_ms", json_integer(ev->duration_ms));
		rc |= set_str(o, "error", ev->error);
		break;
	case VB_EV_STAGE_SKIPPED:
		rc |= set_str(o, "error", ev->error);
		break;
	case VB_EV_RUN_FINISHED:
		rc |= set(o, "success", json_boolean(ev->success));
		rc |= set(o, "duration_ms", json_integer(ev->duration_ms));
		rc |= set_str(o, "error", ev->error);
		break;
	case VB_EV_RUN_CANCELLED:
		rc |= set(o, "duration_ms", json_integer(ev->duration_ms));
		if (ev->error)
			rc |= set_str(o, "error", ev->error);
		break;
	case VB_EV_LLM_REQUEST:
		if (ev->llm) {
			rc |= set_str(o, "provider", ev->llm->provider);
			rc |= set_str(o, "model", ev->llm->model);
			rc |= set_str(o, "path", ev->llm->path);
			rc |= set(o, "input_tokens", json_integer((json_int_t)ev->llm->input_tokens));
			rc |= set(o, "output_tokens", json_integer((json_int_t)ev->llm->output_tokens));
			rc |= set(o, "cost_usd", json_real(ev->llm->cost_usd));
			rc |= set(o, "latency_ms", json_integer(ev->llm->latency_ms));
			rc |= set(o, "ttfb_ms", json_integer(ev->llm->ttfb_ms));
			rc |= set(o, "status", json_integer(ev->llm->status));
			rc |= set(o, "attempts", json_integer(ev->llm->attempts));
		}
		if (ev->error)
			rc |= set_str(o, "error", ev->error);
		break;
	case VB_EV_AGENT_TOOL:
		if (ev->tool) {
			rc |= set_str(o, "tool", ev->tool->name);
			rc |= set_str(o, "input", ev->tool->input);
			rc |= set_str(o, "result", ev->tool->result);
			rc |= set(o, "is_error", json_boolean(ev->tool->is_error));
		}
		rc |= set(o, "duration_ms", json_integer(ev->duration_ms));
		break;
	case VB_EV_AGENT_MESSAGE:
		rc |= set_str(o, "text", ev->text);
		break;
	case VB_EV_AGENT_RESULT:
		if (ev->agent_result) {
			const struct vb_event_agent_result *a = ev->agent_result;
			rc |= set_str(o, "agent", a->agent);
			rc |= set_str(o, "subtype", a->subtype);
			rc |= set(o, "is_error", json_boolean(a->is_error));
			if (a->num_turns >= 0)
				rc |= set(o, "num_turns", json_integer(a->num_turns));
			rc |= set(o, "input_tokens", json_integer((json_int_t)a->input_tokens));
			rc |= set(o, "output_tokens", json_integer((json_int_t)a->output_tokens));
			rc |= set(o, "cost_usd", json_real(a->cost_usd));
			rc |= set_str(o, "result", a->text);
		}
		break;
	case VB_EV_NET_DENIED:
		if (ev->net) {
			rc |= set_str(o, "proto", ev->net->proto);
			rc |= set_str(o, "dst", ev->net->dst);
			rc |= set(o, "port", json_integer(ev->net->port));
			rc |= set_str(o, "rule", ev->net->rule);
			if (ev->net->hint)
				rc |= set_str(o, "hint", ev->net->hint);
			if (ev->net->suppressed)
				rc |= set(o, "suppressed", json_integer((json_int_t)ev->net->suppressed));
		}
		break;
	case VB_EV_NET_PUBLISHED:
		if (ev->net) {
			rc |= set(o, "host_port", json_integer(ev->net->host_port));
			rc |= set(o, "guest_port", json_integer(ev->net->guest_port));
		}
		break;
	case VB_EV_NET_SUMMARY:
		if (ev->net) {
			rc |= set(o, "bytes_out", json_integer((json_int_t)ev->net->bytes_out));
			rc |= set(o, "bytes_in", json_integer((json_int_t)ev->net->bytes_in));
			rc |= set(o, "frames_out", json_integer((json_int_t)ev->net->frames_out));
			rc |= set(o, "frames_in", json_integer((json_int_t)ev->net->frames_in));
			rc |= set(o, "connections", json_integer((json_int_t)ev->net->connections));
			rc |= set(o, "denied", json_integer((json_int_t)ev->net->denied));
			rc |= set(o, "malformed", json_integer((json_int_t)ev->net->malformed));
		}
		break;
	case VB_EV_SKILL_PROVISIONED:
		if (ev->skill) {
			const struct vb_event_skill *k = ev->skill;
			rc |= set_str(o, "type", k->type);
			rc |= set_str(o, "name", k->name);
			rc |= set_str(o, "source", k->source);
			if (k->sha256)
				rc |= set_str(o, "sha256", k->sha256);
			if (k->digest)
				rc |= set_str(o, "digest", k->digest);
			if (k->from)
				rc |= set_str(o, "from", k->from);
			if (k->tools) {
				json_t *t = json_array();
				for (size_t i = 0; t && i < k->n_tools; i++)
					json_array_append_new(t, vb_obs_jstr(k->tools[i], VB_REC_STR_MAX));
				rc |= set(o, "tools", t);
			}
			if (k->path)
				rc |= set_str(o, "path", k->path);
			rc |= set(o, "size", json_integer((json_int_t)k->size));
			rc |= set(o, "files", json_integer((json_int_t)k->files));
		}
		break;
	}
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}
