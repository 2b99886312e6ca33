// Retention & storage: the retention rules in force (GET /api/v1/retention: which records go to
// which tier at which age, and when they are deleted), what the next run of the mover would do
// (POST /api/v1/retention/preview), and the storage by tier (GET /api/v1/storage: records, bytes,
// compression, the disk). "Edit rules" opens the rules' editor (retentionform.ts). Retention is one
// policy for the whole server: a scoped admin gets the server's refusal for the rules and its own
// scope's figures for the storage.

import { bytesText, countText } from "../../admin";
import { getJSON, postJSON } from "../../api";
import { h } from "../../dom";
import { formatTime } from "../../timerange";
import type { TabContext } from "../settings";
import { busy, loadInto } from "./form";
import { previewText, retentionEditor } from "./retentionform";

type Values = string | string[] | undefined;

interface Rule {
  name: string;
  match: { service?: Values; source?: Values; level?: Values; tenant?: Values };
  priority: number;
  hot?: string;
  warm?: string;
  cold?: string;
  delete?: string;
  sample?: { after: string; keep: number };
}

interface Retention {
  rules: Rule[];
  cold_storage: string | null;
  mover: { interval_s: number; last_tick_ns: number | null; moved_rows: Record<string, number>; deleted_rows: number };
}

interface Tier {
  records: number;
  bytes: number;
  uncompressed_bytes?: number;
  bytes_per_record: number;
  compression_ratio: number;
  files?: number;
  location?: string | null;
}

interface Storage {
  tiers: Record<string, Tier>;
  groups: { tier: string; service: string; level: string; records: number; bytes: number }[];
  total: { records: number; bytes: number; compression_ratio?: number };
  disk?: { used_bytes: number; free_bytes: number; max_bytes: number | null; rejecting: boolean };
}

interface Preview {
  rule: string;
  to_warm: number;
  to_cold: number;
  delete: number;
  sample_out: number;
  bytes: number;
}

const matchText = (m: Rule["match"]): string => {
  const parts = (["tenant", "service", "source", "level"] as const).flatMap((k) => {
    const v = m?.[k];
    return v === undefined || v === null ? [] : [`${k}: ${Array.isArray(v) ? v.join(" | ") : v}`];
  });
  return parts.length ? parts.join(", ") : "every record";
};

export async function retentionTab({ root, signal }: TabContext): Promise<void> {
  const rulesBox = h("section", { class: "card", id: "retention-rules" }, h("p", { class: "hint" }, "Loading…"));
  const editorBox = h("section", { class: "card settings-editor", id: "retention-editor", hidden: true });
  const storageBox = h("section", { class: "card", id: "storage" }, h("p", { class: "hint" }, "Loading…"));
  root.append(rulesBox, editorBox, storageBox);

  async function rules(): Promise<void> {
    const answer = await loadInto(rulesBox, () => getJSON<Retention>("/api/v1/retention", signal),
      { title: "Retention rules", errorId: "retention-error" });
    if (answer === null) return;
    const mover = answer.mover;
    rulesBox.append(h("h2", null, "Retention rules"),
      h("p", { class: "hint" },
        "Each record belongs to the most specific rule that matches it (the earlier one on a tie); records no rule " +
        "matches stay hot. A tier's age is when records leave it. Also changed with PUT /api/v1/retention or ",
        h("code", null, "logharbor retention"), "."));
    const preview = h("button", { type: "button", id: "retention-preview" }, "What would the next run do?");
    if (!answer.rules.length) {
      rulesBox.append(h("p", { class: "hint", id: "no-rules" }, "No rules: every record stays hot and is never deleted by age."));
    } else {
      const cells = new Map<string, HTMLElement>();
      rulesBox.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "rule-list" },
        h("thead", null, h("tr", null, ["rule", "records", "hot until", "warm until", "cold until", "deleted at", "sampled",
          "priority", "next run"].map((c) => h("th", null, c)))),
        h("tbody", null, answer.rules.map((r) => {
          const next = h("td", { class: "next" }, "");
          cells.set(r.name, next);
          return h("tr", { "data-rule": r.name },
            h("td", null, r.name),
            h("td", null, matchText(r.match)),
            h("td", null, r.hot ?? "—"),
            h("td", null, r.warm ?? "—"),
            h("td", null, r.cold ?? "—"),
            h("td", null, r.delete ?? "when it leaves its last tier"),
            h("td", null, r.sample ? `keep ${Math.round(r.sample.keep * 100)} % after ${r.sample.after}` : "—"),
            h("td", { class: "num" }, String(r.priority)),
            next);
        })))));
      const note = h("span", { class: "hint", role: "status" });
      preview.addEventListener("click", () => void busy(preview, async () => {
        note.textContent = "";
        try {
          const out = (await postJSON<{ rules: Preview[] }>("/api/v1/retention/preview", null, signal)).rules;
          for (const p of out) {
            const cell = cells.get(p.rule);
            if (!cell) continue;
            cell.textContent = previewText(p);
          }
          note.textContent = "counted now, over the stored records";
        } catch (err) {
          note.className = "form-error";
          note.textContent = (err as Error).message;
        }
      }));
      rulesBox.append(h("div", { class: "row" }, preview, note));
    }
    const edit = h("button", { type: "button", class: "primary", id: "retention-edit" }, "Edit rules");
    edit.addEventListener("click", () => retentionEditor(editorBox, answer.rules, (saved) => {
      if (saved) void rules();
    }));
    rulesBox.append(h("div", { class: "row" }, edit));
    rulesBox.append(h("p", { class: "hint", id: "mover-state" },
      `The mover runs every ${mover.interval_s} s; last run ${mover.last_tick_ns ? formatTime(mover.last_tick_ns / 1e6) : "not yet"}; ` +
      `moved ${countText(mover.moved_rows.warm ?? 0)} records to warm and ${countText(mover.moved_rows.cold ?? 0)} to cold, ` +
      `deleted ${countText(mover.deleted_rows)} since the server started. Cold storage: ${answer.cold_storage ?? "none"}.`));
  }

  async function storage(): Promise<void> {
    const s = await loadInto(storageBox, () => getJSON<Storage>("/api/v1/storage", signal), { title: "Storage" });
    if (s === null) return;
    storageBox.append(h("h2", null, "Storage by tier"));
    const tiers = ["hot", "warm", "cold"].filter((t) => s.tiers[t]);
    storageBox.append(h("div", { class: "table-box" }, h("table", { class: "grid", id: "tier-list" },
      h("thead", null, h("tr", null, ["tier", "records", "on disk", "per record", "compression", "where"].map((c) => h("th", null, c)))),
      h("tbody", null, tiers.map((t) => {
        const f = s.tiers[t];
        return h("tr", { "data-tier": t },
          h("td", null, t),
          h("td", { class: "num", "data-records": String(f.records) }, countText(f.records)),
          h("td", { class: "num", "data-bytes": String(f.bytes) }, bytesText(f.bytes)),
          h("td", { class: "num" }, f.records ? bytesText(f.bytes_per_record) : "—"),
          h("td", { class: "num" }, f.compression_ratio ? `${f.compression_ratio}×` : "—"),
          h("td", null, t !== "cold" ? "this server's disk"
            // a scoped key's figures do not say where the cold tier is
            : f.location === undefined ? "cold storage" : `${f.location ?? "no cold storage"}${f.files ? ` (${f.files} files)` : ""}`));
      })),
      h("tfoot", null, h("tr", null, h("th", null, "total"),
        h("th", { class: "num", id: "total-records" }, countText(s.total.records)),
        h("th", { class: "num" }, bytesText(s.total.bytes)), h("th", null, ""),
        h("th", { class: "num" }, s.total.compression_ratio ? `${s.total.compression_ratio}×` : ""), h("th", null, ""))))));
    if (s.disk) {
      const d = s.disk;
      storageBox.append(h("p", { class: d.rejecting ? "form-error" : "hint", id: "disk" },
        `Data directory: ${bytesText(d.used_bytes)} used, ${bytesText(d.free_bytes)} free on its disk` +
        (d.max_bytes ? `, at most ${bytesText(d.max_bytes)}` : "") +
        (d.rejecting ? " — the disk is full: ingest is refused until space is freed." : ".")));
    }
    if (s.groups.length) {
      const top = s.groups.slice().sort((a, b) => b.bytes - a.bytes || b.records - a.records).slice(0, 20);
      storageBox.append(h("h3", null, "Largest services and levels"),
        h("div", { class: "table-box" }, h("table", { class: "grid", id: "group-list" },
          h("thead", null, h("tr", null, ["tier", "service", "level", "records", "on disk (its share of the tier, estimated)"].map((c) => h("th", null, c)))),
          h("tbody", null, top.map((g) => h("tr", null,
            h("td", null, g.tier), h("td", null, g.service || "—"), h("td", null, g.level || "—"),
            h("td", { class: "num" }, countText(g.records)), h("td", { class: "num" }, bytesText(g.bytes))))))));
    }
  }
  await Promise.all([rules(), storage()]);
}
