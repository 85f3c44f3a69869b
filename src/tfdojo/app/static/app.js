// tfdojo trainer: the countdown, the answer counter, Tab in the code editor, and voice recording when the
// server supports it. Everything else works without JavaScript.
"use strict";

function startCountdown(el) {
  let left = parseInt(el.dataset.seconds, 10);
  const show = () => {
    const m = Math.floor(Math.abs(left) / 60), s = Math.abs(left) % 60;
    el.textContent = (left < 0 ? "over by " : "") + m + ":" + String(s).padStart(2, "0");
    el.classList.toggle("late", left <= 0);
  };
  show();
  setInterval(() => { left -= 1; show(); }, 1000);
}

function countChars(box, out) {
  const update = () => { out.textContent = String(box.value.length); };
  box.addEventListener("input", update);
  update();
}

function tabIndents(editor) {
  editor.addEventListener("keydown", (e) => {
    if (e.key !== "Tab") return;
    e.preventDefault();
    const start = editor.selectionStart, end = editor.selectionEnd;
    editor.value = editor.value.slice(0, start) + "    " + editor.value.slice(end);
    editor.selectionStart = editor.selectionEnd = start + 4;
  });
}

async function uploadRecording(blob, box, status) {
  const form = new FormData();
  form.append("audio", blob, blob.name || "answer.webm");
  status.textContent = "transcribing…";
  const reply = await fetch("/voice/transcribe", { method: "POST", body: form, credentials: "same-origin" });
  const data = await reply.json();
  if (!reply.ok) { status.textContent = data.error; return; }
  box.value = (box.value ? box.value + "\n" : "") + data.text;
  box.dispatchEvent(new Event("input"));
  status.textContent = "transcribed: check it, then submit";
}

function voiceRecorder(button, box, status) {
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    button.disabled = true;
    status.textContent = "this browser cannot record audio; type your answer";
    return;
  }
  let recorder = null, chunks = [];
  button.addEventListener("click", async () => {
    if (recorder && recorder.state === "recording") { recorder.stop(); return; }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      recorder = new MediaRecorder(stream);
      chunks = [];
      recorder.ondataavailable = (e) => chunks.push(e.data);
      recorder.onstop = () => {
        stream.getTracks().forEach((t) => t.stop());
        button.textContent = "Record answer";
        uploadRecording(new Blob(chunks, { type: recorder.mimeType }), box, status);
      };
      recorder.start();
      button.textContent = "Stop recording";
      status.textContent = "recording…";
    } catch (err) {
      status.textContent = "no microphone: " + err.message;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const countdown = document.getElementById("countdown");
  if (countdown) startCountdown(countdown);
  const box = document.getElementById("answer"), chars = document.getElementById("chars");
  if (box && chars) countChars(box, chars);
  const editor = document.getElementById("editor");
  if (editor) tabIndents(editor);
  const record = document.getElementById("record");
  if (record && box) voiceRecorder(record, box, document.getElementById("voice-status"));
  const audioFile = document.getElementById("audio-file");
  if (audioFile && box) {
    audioFile.addEventListener("change", () => {
      if (audioFile.files.length) uploadRecording(audioFile.files[0], box, document.getElementById("voice-status"));
    });
  }
  document.querySelectorAll("form.answer-form, #code-form").forEach((form) => {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; button.textContent = "Grading…"; }
    });
  });
});
