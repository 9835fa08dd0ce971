/*
 * Live updates of the DAG, run and task-instance pages.
 *
 * The page marks what may change with [data-live-region="name"] and carries one hidden
 * [data-live data-ws-path data-active] element. State changes arrive over the DAG's websocket
 * (tradewind.live: {"type": "event", "run_id", "task_id", "map_index", "state", ...}); each one recolours
 * the matching cells at once, then the regions are re-read from the server (debounced) so counts,
 * durations and new runs follow. When the socket cannot connect, the regions are re-read every few
 * seconds while something is still running (and rarely otherwise).
 */
(function () {
  "use strict";

  var marker = document.querySelector("[data-live]");
  if (!marker) {
    return;
  }
  var POLL_ACTIVE_MS = 2500;
  var POLL_IDLE_MS = 30000;
  var DEBOUNCE_MS = 400;
  var RECONNECT_MS = 5000;
  var STATE = /^[a-z_]+$/;

  var statusText = "";
  var statusMode = "";
  var inflight = false;
  var again = false;
  var debounce = null;
  var pollTimer = null;

  function isActive() {
    return marker.getAttribute("data-active") === "true";
  }

  function showStatus(text, mode) {
    statusText = text;
    statusMode = mode;
    document.querySelectorAll("[data-live-status]").forEach(function (el) {
      el.textContent = text;
      el.className = "live-status " + mode;
      el.hidden = !text;
    });
    document.body.setAttribute("data-live-mode", mode);
  }

  // A region the user is working in (an open menu, a focused field) is left alone until they are done.
  function isBusy(region) {
    if (region.querySelector("details[open].menu")) {
      return true;
    }
    var focused = document.activeElement;
    return !!focused && region.contains(focused) && /^(INPUT|SELECT|TEXTAREA)$/.test(focused.tagName);
  }

  function refresh() {
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "live" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var reload = false;
        document.querySelectorAll("[data-live-region]").forEach(function (region) {
          var name = region.getAttribute("data-live-region");
          var next = fresh.querySelector('[data-live-region="' + name + '"]');
          if (!next || isBusy(region)) {
            return;
          }
          var key = region.getAttribute("data-reload-key");
          if (key !== null && key !== next.getAttribute("data-reload-key")) {
            reload = true;
            return;
          }
          region.innerHTML = next.innerHTML;
        });
        if (reload) {
          window.location.reload();
          return;
        }
        var freshMarker = fresh.querySelector("[data-live]");
        if (freshMarker) {
          marker.setAttribute("data-active", freshMarker.getAttribute("data-active"));
        }
        showStatus(statusText, statusMode);
        document.body.setAttribute("data-live-refreshed", String(Date.now()));
      })
      .catch(function () {
        /* a failed refresh is retried by the next event or poll */
      })
      .then(function () {
        inflight = false;
        if (again) {
          again = false;
          refresh();
        }
      });
  }

  function refreshSoon() {
    clearTimeout(debounce);
    debounce = setTimeout(refresh, DEBOUNCE_MS);
  }

  function recolour(el, state) {
    el.className = el.className.replace(/\bstate-[a-z_]+\b/g, "state-" + state);
  }

  function applyEvent(event) {
    if (!event || event.type !== "event" || !STATE.test(String(event.state))) {
      return;
    }
    if (event.task_id === null || event.task_id === undefined) {
      document.querySelectorAll("[data-run]").forEach(function (el) {
        if (el.getAttribute("data-run") === event.run_id) {
          recolour(el, event.state);
        }
      });
    } else {
      var key = event.run_id + "|" + event.task_id + "|" + event.map_index;
      document.querySelectorAll("[data-ti]").forEach(function (el) {
        if (el.getAttribute("data-ti") !== key) {
          return;
        }
        var badge = el.querySelector(".state") || el;
        recolour(badge, event.state);
        if (badge.classList.contains("state") && badge !== el) {
          badge.textContent = event.state;
        }
      });
    }
    refreshSoon();
  }

  function poll() {
    clearTimeout(pollTimer);
    pollTimer = setTimeout(function () {
      if (!document.hidden) {
        refresh();
      }
      poll();
    }, isActive() ? POLL_ACTIVE_MS : POLL_IDLE_MS);
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  function connect() {
    var path = marker.getAttribute("data-ws-path");
    if (!path || !("WebSocket" in window)) {
      showStatus("auto-refresh", "polling");
      poll();
      return;
    }
    var socket;
    try {
      socket = new WebSocket((window.location.protocol === "https:" ? "wss://" : "ws://") + window.location.host + path);
    } catch (error) {
      showStatus("auto-refresh", "polling");
      poll();
      return;
    }
    var opened = false;
    socket.onopen = function () {
      opened = true;
      stopPolling();
      showStatus("live", "live");
      refreshSoon(); // catch up with anything that changed before the socket opened
    };
    socket.onmessage = function (message) {
      try {
        applyEvent(JSON.parse(message.data));
      } catch (error) {
        /* not an event of ours */
      }
    };
    socket.onclose = function () {
      showStatus("auto-refresh", "polling");
      poll();
      if (opened) {
        setTimeout(connect, RECONNECT_MS); // the server went away: try the socket again, polling meanwhile
      }
    };
  }

  connect();
})();
