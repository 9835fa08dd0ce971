/*
 * The log viewer of the task-instance page: reads one try's log by byte offset from
 * [data-log-url] ({content, next_offset, finished}) and keeps asking from next_offset until the try
 * is over, so a running task's output appears as it is written.
 */
(function () {
  "use strict";

  var viewer = document.querySelector("[data-log-url]");
  if (!viewer) {
    return;
  }
  var FOLLOW_MS = 1500;
  var RETRY_MS = 5000;
  var url = viewer.getAttribute("data-log-url");
  var content = viewer.querySelector("[data-log-content]");
  var status = viewer.querySelector("[data-log-status]");
  var follow = viewer.querySelector("[data-log-follow]");
  var wrap = viewer.querySelector("[data-log-wrap]");
  var offset = 0;

  if (wrap) {
    wrap.addEventListener("change", function () {
      content.classList.toggle("wrap", wrap.checked);
    });
  }

  function say(text, finished) {
    status.textContent = text;
    viewer.setAttribute("data-finished", finished ? "true" : "false");
  }

  function read() {
    var separator = url.indexOf("?") >= 0 ? "&" : "?";
    fetch(url + separator + "offset=" + offset, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) {
            throw new Error(body.detail || "HTTP " + response.status);
          }
          return body;
        });
      })
      .then(function (chunk) {
        if (chunk.content) {
          content.appendChild(document.createTextNode(chunk.content));
          if (follow && follow.checked) {
            content.scrollTop = content.scrollHeight;
          }
        }
        offset = chunk.next_offset;
        if (chunk.finished) {
          say(content.textContent ? "End of log" : "This try wrote no log", true);
          return;
        }
        say("Following the running try…", false);
        setTimeout(read, chunk.content ? 200 : FOLLOW_MS); // more may be waiting right behind a full chunk
      })
      .catch(function (error) {
        say("Could not read the log (" + error.message + "); retrying…", false);
        setTimeout(read, RETRY_MS);
      });
  }

  read();
})();
