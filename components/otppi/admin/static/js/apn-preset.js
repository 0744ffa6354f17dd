// Modem page: choosing an APN preset fills the APN, username, password and dial number inputs, so they
// can be reviewed before Save. Without script the "Apply preset" button saves the preset on the server.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const select = document.getElementById("f-preset");
  if (!select) return;
  select.addEventListener("change", () => {
    const option = select.selectedOptions[0];
    if (!option || !option.value) return;
    for (const name of ["apn", "apn_username", "apn_password", "dial_number"]) {
      const input = document.getElementById("f-" + name);
      if (input) input.value = option.getAttribute("data-" + name) || "";
    }
    // An empty password field keeps the stored one: a preset without a password clears it instead.
    const clear = document.querySelector('input[name="clear_apn_password"]');
    if (clear) clear.checked = !option.getAttribute("data-apn_password");
  });
});
