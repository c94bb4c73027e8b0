{#- Manage Students: a student without a first name reads by the name they have (see
    student_names.js.tpl). -#}
{%- extends 'nbgrader/manage_students.tpl' -%}

{%- block head -%}
{{ super() }}
{% with view = "StudentUI", cell = "$name" %}{% include 'student_names.js.tpl' %}{% endwith %}
{%- endblock head -%}
