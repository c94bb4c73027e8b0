{#- Manage Submissions: a student without a first name reads by the name they have (see
    student_names.js.tpl). -#}
{%- extends 'nbgrader/manage_submissions.tpl' -%}

{%- block head -%}
{{ super() }}
{% with view = "SubmissionUI", cell = "$student_name" %}{% include 'student_names.js.tpl' %}{% endwith %}
{%- endblock head -%}
