//! What a person sees while `medallion run` works: in a terminal, a live spinner per running
//! task; otherwise one plain line per event. Both end with a summary table.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{NodeRecord, Phase, RunSummary};

pub struct View {
    start: Instant,
    live: Option<MultiProgress>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl View {
    pub fn new() -> View {
        View {
            start: Instant::now(),
            live: std::io::stdout().is_terminal().then(MultiProgress::new),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn line(&self, text: &str) {
        match &self.live {
            Some(m) => {
                let _ = m.println(text);
            }
            None => println!("[{:>6.1}s] {text}", self.start.elapsed().as_secs_f64()),
        }
    }

    pub fn started(&self, workflow: &str, entry: &str) {
        self.line(&format!(
            "workflow {workflow}: running {entry} on this machine"
        ));
    }

    pub fn node_started(&self, task: &str, template: &str) {
        match &self.live {
            Some(m) => {
                let bar = m.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(task.to_string());
                bar.set_message(format!("({template})"));
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Ok(mut b) = self.bars.lock() {
                    b.insert(task.to_string(), bar);
                }
            }
            None => self.line(&format!("▶ {task} ({template}) started")),
        }
    }

    pub fn node_done(&self, r: &NodeRecord) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut b| b.remove(&r.path)) {
            bar.finish_and_clear();
        }
        let mark = match r.phase {
            Phase::Succeeded => "✔",
            Phase::Failed | Phase::Error => "✘",
            Phase::Skipped | Phase::Omitted => "○",
        };
        let detail = match r.phase {
            Phase::Succeeded if r.memoized => format!("{} (memoized)", outputs_text(r, 80)),
            Phase::Succeeded => outputs_text(r, 80),
            _ => r.message.clone(),
        };
        self.line(&format!(
            "{mark} {} {} {:.1}s {detail}",
            r.path,
            r.phase.as_str(),
            r.duration.as_secs_f64()
        ));
    }

    pub fn note(&self, text: &str) {
        self.line(&format!("  {text}"));
    }

    /// Asks a person on the terminal and returns the trimmed answer.
    pub fn ask(&self, question: &str) -> String {
        let ask = || {
            let mut out = std::io::stdout();
            let _ = write!(out, "{question}");
            let _ = out.flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            answer.trim().to_string()
        };
        match &self.live {
            Some(m) => m.suspend(ask),
            None => ask(),
        }
    }

    pub fn finished(&self, s: &RunSummary) {
        let mut rows = vec![(
            "TASK".to_string(),
            "PHASE".to_string(),
            "TIME".to_string(),
            "OUTPUTS / MESSAGE".to_string(),
        )];
        for n in &s.nodes {
            rows.push((
                n.path.clone(),
                n.phase.as_str().to_string(),
                format!("{:.1}s", n.duration.as_secs_f64()),
                match n.phase {
                    Phase::Succeeded => outputs_text(n, 100),
                    _ => n.message.chars().take(100).collect(),
                },
            ));
        }
        let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(4);
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(5);
        let w2 = rows.iter().map(|r| r.2.len()).max().unwrap_or(4);
        println!();
        for r in &rows {
            println!("{:w0$}  {:w1$}  {:>w2$}  {}", r.0, r.1, r.2, r.3);
        }
        for n in &s.nodes {
            for (name, path) in &n.artifacts {
                println!("{}: {name} → {}", n.path, path.display());
            }
        }
        if !s.outputs.is_empty() {
            let outs: Vec<String> = s.outputs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!("workflow outputs: {}", outs.join(" "));
        }
        if !s.not_applied.is_empty() {
            println!(
                "pod settings not applied on this machine (they apply on a cluster): {}",
                s.not_applied.iter().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        println!(
            "workflow {} {} in {:.1}s; status: {}",
            s.name,
            s.phase.as_str(),
            self.start.elapsed().as_secs_f64(),
            s.run_dir.join("status.json").display()
        );
    }
}

fn outputs_text(r: &NodeRecord, max: usize) -> String {
    let text = r
        .outputs
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "metrics"))
        .map(|(k, v)| format!("{k}={}", v.replace('\n', " ")))
        .collect::<Vec<_>>()
        .join(" ");
    if text.chars().count() > max {
        format!("{}…", text.chars().take(max).collect::<String>())
    } else {
        text
    }
}
