// A small piano for the page: notes (from a MIDI file, or from abcjs for sheet music) played
// through WebAudio with the embedded Salamander Grand Piano samples. There is a sample every
// three semitones (C and F# of each octave); other notes are the nearest sample, pitch-shifted.

const SAMPLES = [
  ["C2", 36], ["Fs2", 42], ["C3", 48], ["Fs3", 54], ["C4", 60], ["Fs4", 66],
  ["C5", 72], ["Fs5", 78], ["C6", 84], ["Fs6", 90], ["C7", 96],
];
// Notes are scheduled this far ahead of the audio clock, in seconds.
const LOOKAHEAD = 1.0;
// How long a note rings on after its end (its release), in seconds.
const RELEASE = 0.3;

function nearestSample(midi) {
  let best = SAMPLES[0];
  for (const s of SAMPLES) if (Math.abs(s[1] - midi) < Math.abs(best[1] - midi)) best = s;
  return best;
}

export class Piano {
  constructor(base = "/assets/vendor/piano/") {
    this.base = base;
    this.ctx = null;
    this.buffers = new Map();
    this.timer = null;
    this.voices = new Set();
    this.onstate = () => {};
    this.state = "stopped";
  }

  setState(state) {
    this.state = state;
    this.onstate(state);
  }

  async buffer(name) {
    if (!this.buffers.has(name)) {
      this.buffers.set(name, fetch(this.base + name + ".mp3")
        .then((r) => { if (!r.ok) throw new Error(`sample ${name}: ${r.status}`); return r.arrayBuffer(); })
        .then((data) => this.ctx.decodeAudioData(data)));
    }
    return this.buffers.get(name);
  }

  // Plays `notes` ({midi, time, duration, velocity}, times in seconds); resolves when it starts.
  async play(notes) {
    this.stop();
    if (!this.ctx) this.ctx = new AudioContext();
    await this.ctx.resume();
    this.setState("loading");
    const sorted = notes.filter((n) => n.duration > 0).sort((a, b) => a.time - b.time);
    const names = [...new Set(sorted.map((n) => nearestSample(n.midi)[0]))];
    const loaded = new Map();
    await Promise.all(names.map(async (n) => loaded.set(n, await this.buffer(n))));
    if (this.state !== "loading") return; // stopped while loading
    const start = this.ctx.currentTime + 0.1;
    const end = sorted.reduce((e, n) => Math.max(e, n.time + n.duration), 0);
    let next = 0;
    const schedule = () => {
      const horizon = this.ctx.currentTime + LOOKAHEAD - start;
      for (; next < sorted.length && sorted[next].time < horizon; next++) {
        this.voice(sorted[next], start, loaded);
      }
      if (this.ctx.currentTime - start > end + RELEASE) this.stop();
    };
    this.startedAt = start;
    this.duration = end;
    this.setState("playing");
    schedule();
    this.timer = setInterval(schedule, 100);
  }

  voice(note, start, loaded) {
    const [name, pitch] = nearestSample(note.midi);
    const source = this.ctx.createBufferSource();
    source.buffer = loaded.get(name);
    source.playbackRate.value = Math.pow(2, (note.midi - pitch) / 12);
    const gain = this.ctx.createGain();
    const t = start + note.time;
    const level = 0.15 + 0.6 * (note.velocity ?? 0.8);
    gain.gain.setValueAtTime(level, t);
    gain.gain.setTargetAtTime(0, t + note.duration, RELEASE / 3);
    source.connect(gain).connect(this.ctx.destination);
    source.start(t);
    source.stop(t + note.duration + RELEASE * 2);
    this.voices.add(source);
    source.onended = () => this.voices.delete(source);
  }

  // Seconds played so far (0 when stopped).
  position() {
    return this.state === "playing" ? Math.max(0, this.ctx.currentTime - this.startedAt) : 0;
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const v of this.voices) { try { v.stop(); } catch (_) { /* not started yet */ } }
    this.voices.clear();
    if (this.state !== "stopped") this.setState("stopped");
  }
}

// The notes of a Standard MIDI File (bytes), through @tonejs/midi.
export function midiNotes(bytes) {
  const midi = new self.Midi(bytes);
  return midi.tracks.flatMap((track) =>
    track.channel === 9 ? [] : track.notes.map((n) => ({
      midi: n.midi, time: n.time, duration: n.duration, velocity: n.velocity,
    })));
}
