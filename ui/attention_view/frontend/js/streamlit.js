// Streamlit's component protocol, spoken directly over postMessage (what the npm package
// streamlit-component-lib does): announce readiness, receive "render" messages with the
// Python arguments, send back a value and the frame height.

const API_VERSION = 1;

function send(type, data) {
  window.parent.postMessage({ isStreamlitMessage: true, type, ...data }, "*");
}

/** Calls `callback(args, theme)` for every render message, then tells Streamlit we are ready. */
export function onRender(callback) {
  window.addEventListener("message", (event) => {
    // Only the parent frame (Streamlit) drives the view.
    if (event.source !== window.parent) return;
    const data = event.data;
    if (data && data.type === "streamlit:render") callback(data.args || {}, data.theme || null);
  });
  send("streamlit:componentReady", { apiVersion: API_VERSION });
}

/** The value Python's component call returns on the next run (JSON-serialisable). */
export function setComponentValue(value) {
  send("streamlit:setComponentValue", { value, dataType: "json" });
}

export function setFrameHeight(height) {
  send("streamlit:setFrameHeight", { height });
}
