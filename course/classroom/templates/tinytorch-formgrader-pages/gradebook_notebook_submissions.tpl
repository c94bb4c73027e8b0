{#- Manual Grading's list of one notebook's submissions (course/classroom/formgrader_view.py): each
    student's name is shown from the start, where nbgrader shows "Submission #N" (a number that
    changes when a student is added) until the eye is clicked, and the column says "Student". The
    eye and the button still hide and show the names. -#}
{%- extends 'nbgrader/gradebook_notebook_submissions.tpl' -%}

{%- block head -%}
{{ super() }}
<style>
.name-hidden { display: none; }
a.name-shown { display: inline; }
span.glyphicon.name-shown { display: inline-block; }
</style>
{%- endblock head -%}

{%- block messages -%}
<button id="toggle_names" onclick="toggleAllNames()">Hide All Names</button>
{%- endblock -%}

{%- block table_header -%}
<tr>
  <th></th>
  <th>Student</th>
  <th class="text-center">Overall Score</th>
  <th class="text-center">Code Score</th>
  <th class="text-center">Written Score</th>
  <th class="text-center">Task Score</th>
  <th class="text-center">Needs Manual Grade?</th>
  <th class="text-center">Tests Failed?</th>
  <th class="text-center">Flagged?</th>
</tr>
{%- endblock -%}
