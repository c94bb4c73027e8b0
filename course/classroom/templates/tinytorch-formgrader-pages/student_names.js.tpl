{#- A student named by their id alone (no roster: formgrader.name_students sets the id as the last
    name, no first name) reads "alice", where nbgrader's page writes "alice, None": after the
    page's view draws a row, its name cell is written again as the course names a student
    (formgrader_view.shown_name: "last, first", one of them, or the id). -#}
<script>
(function () {
  function shownName(model) {
    var first = (model.get("first_name") || "").trim();
    var last = (model.get("last_name") || "").trim();
    if (first && last) return last + ", " + first;
    return last || first || model.get("student") || model.get("id");
  }
  var View = {{ view }}, cell = "{{ cell }}", render = View.prototype.render;
  View.prototype.render = function () {
    var result = render.apply(this, arguments);
    var name = shownName(this.model), $cell = this[cell], $link = $cell.children("a");
    ($link.length ? $link : $cell).text(name);
    $cell.attr("data-order", name);
    return result;
  };
})();
</script>
