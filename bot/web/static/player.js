// The review screen's player, tied to the transcript (no library, no CDN).
// - A turn's place in the recording is in its data-start / data-end (seconds from the
//   answer; bot/web/review_service.py player_turns explains how they are derived).
// - Clicking a turn seeks there and plays; the turn being heard gets the class "playing".
// - Speeds 1x / 1.5x / 2x; the position bar carries a tick per turn and seeks on click.
// - Channels: the recording is stereo, callee left and bot right. The Web Audio API
//   splits the two (ChannelSplitter) and a gain per party lets the reviewer hear the
//   callee only, the bot only, or both; the chosen parties go to both ears. The audio
//   graph is built on the first play or channel choice: browsers start an AudioContext
//   only after a gesture, and once built every sound of the element goes through it.
// - Words: the play button's labels come from the page (data-play / data-pause), in its
//   language; nothing shown is written here.
// Exposes window.reviewPlayer for review.js (the keyboard).
(function () {
  const audio = document.getElementById("player-audio");
  const turns = Array.from(document.querySelectorAll(".transcript .turn"));
  const noop = function () {};
  window.reviewPlayer = { available: false, seekTurn: noop, toggle: noop, setRate: noop,
    cycleChannel: noop, nudge: noop };
  if (!audio) return;

  const box = document.getElementById("player");
  const total = parseFloat(box.dataset.total) || 0;
  const bar = document.getElementById("player-bar");
  const fill = document.getElementById("player-fill");
  const clock = document.getElementById("play-time");
  const toggleButton = document.getElementById("play-toggle");
  const channels = ["both", "callee", "bot"];
  let channel = "both";
  let graph = null;
  let wanted = null; // a seek asked for before the recording's metadata arrived
  let playingIndex = -1;

  function length() {
    return isFinite(audio.duration) && audio.duration > 0 ? audio.duration : total;
  }

  function audioGraph() {
    if (graph) {
      if (graph.ctx.state === "suspended") graph.ctx.resume();
      return graph;
    }
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    try {
      const ctx = new Context();
      const source = ctx.createMediaElementSource(audio);
      const splitter = ctx.createChannelSplitter(2);
      const merger = ctx.createChannelMerger(2);
      const callee = ctx.createGain();
      const bot = ctx.createGain();
      source.connect(splitter);
      splitter.connect(callee, 0); // left: the callee
      splitter.connect(bot, 1); // right: the bot
      [callee, bot].forEach(function (g) {
        g.connect(merger, 0, 0);
        g.connect(merger, 0, 1);
      });
      merger.connect(ctx.destination);
      graph = { ctx: ctx, callee: callee, bot: bot };
      applyChannel();
    } catch (err) {
      graph = null; // no Web Audio: the element plays both channels as recorded
    }
    return graph;
  }

  function applyChannel() {
    document.querySelectorAll("#player .channel").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.channel === channel));
    });
    if (!graph) return;
    graph.callee.gain.value = channel === "bot" ? 0 : 1;
    graph.bot.gain.value = channel === "callee" ? 0 : 1;
  }

  function setChannel(name) {
    channel = name;
    audioGraph();
    applyChannel();
  }

  function play() {
    audioGraph();
    const started = audio.play();
    if (started && started.catch) started.catch(noop);
  }

  function seek(seconds) {
    const t = Math.max(0, Math.min(seconds, length() || seconds));
    if (audio.readyState >= 1) {
      audio.currentTime = t;
    } else {
      wanted = t;
      if (audio.networkState === HTMLMediaElement.NETWORK_EMPTY) audio.load();
    }
    render(t);
  }

  audio.addEventListener("loadedmetadata", function () {
    if (wanted !== null) {
      audio.currentTime = wanted;
      wanted = null;
    }
    render(audio.currentTime); // the length is known now: the bar can show where we are
  });

  function fmt(s) {
    const whole = Math.floor(s);
    return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
  }

  function turnAt(t) {
    for (let i = turns.length - 1; i >= 0; i--) {
      if (parseFloat(turns[i].dataset.start) <= t + 0.01) return i;
    }
    return -1;
  }

  function render(t) {
    const all = length();
    fill.style.width = (all ? Math.min(100, (100 * t) / all) : 0) + "%";
    bar.setAttribute("aria-valuenow", String(Math.round(t)));
    clock.textContent = fmt(t);
    const index = turnAt(t);
    if (index !== playingIndex) {
      if (playingIndex >= 0) turns[playingIndex].classList.remove("playing");
      playingIndex = index;
      if (index >= 0) {
        turns[index].classList.add("playing");
        if (!audio.paused) turns[index].scrollIntoView({ block: "nearest" });
      }
    }
  }

  function tick() {
    render(wanted !== null ? wanted : audio.currentTime);
    if (!audio.paused) window.requestAnimationFrame(tick);
  }
  audio.addEventListener("timeupdate", tick);
  audio.addEventListener("seeked", tick);
  audio.addEventListener("play", function () {
    toggleButton.textContent = toggleButton.dataset.pause || "Pause";
    window.requestAnimationFrame(tick);
  });
  audio.addEventListener("pause", function () {
    toggleButton.textContent = toggleButton.dataset.play || "Play";
  });

  function toggle() {
    if (audio.paused) play();
    else audio.pause();
  }

  function setRate(rate) {
    audio.playbackRate = rate;
    document.querySelectorAll("#player .speed").forEach(function (b) {
      b.setAttribute("aria-pressed", String(parseFloat(b.dataset.rate) === rate));
    });
  }

  function seekTurn(turn, andPlay) {
    seek(parseFloat(turn.dataset.start) || 0);
    if (andPlay) play();
  }

  toggleButton.addEventListener("click", toggle);
  document.querySelectorAll("#player .speed").forEach(function (b) {
    b.addEventListener("click", function () { setRate(parseFloat(b.dataset.rate)); });
  });
  document.querySelectorAll("#player .channel").forEach(function (b) {
    b.addEventListener("click", function () { setChannel(b.dataset.channel); });
  });
  bar.addEventListener("click", function (event) {
    const r = bar.getBoundingClientRect();
    seek(((event.clientX - r.left) / r.width) * length());
  });

  window.reviewPlayer = {
    available: true,
    seekTurn: seekTurn,
    toggle: toggle,
    setRate: setRate,
    cycleChannel: function () {
      setChannel(channels[(channels.indexOf(channel) + 1) % channels.length]);
    },
    nudge: function (by) { seek((wanted !== null ? wanted : audio.currentTime) + by); },
  };
})();
